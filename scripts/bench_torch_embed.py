"""sentence-transformers reference for `splai bench embed` (run through scripts/bench-torch).

The same MiniLM files (models/all-minilm-l6-v2), the same 512 sentences (8 subjects x 8 verbs x 8
objects, as src/bench/embed.rs builds them), batch 32, mean pooling, normalised vectors. Prints
sentences/s per run, and writes the vectors to --vectors FILE (JSON) for a cosine check.
"""

import argparse
import json
import time

import torch
from sentence_transformers import SentenceTransformer, models

SUBJECTS = ["cat", "dog", "engineer", "teacher", "robot", "child", "pilot", "farmer"]
VERBS = ["quickly finds", "slowly opens", "carefully paints", "happily carries", "quietly closes",
         "proudly shows", "barely sees", "gladly fixes"]
OBJECTS = ["the red door", "a heavy box", "the old map", "a small boat", "the broken clock",
           "a green lamp", "the new bridge", "a wooden chair"]


def sentences():
    return [f"The {s} {v} {o}." for s in SUBJECTS for v in VERBS for o in OBJECTS]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/all-minilm-l6-v2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vectors")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    word = models.Transformer(args.model, max_seq_length=256)
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu")
    texts = sentences()
    model.encode(texts[:args.batch], batch_size=args.batch)  # warm up
    for run in range(args.runs):
        start = time.perf_counter()
        vecs = model.encode(texts, batch_size=args.batch, normalize_embeddings=True)
        took = time.perf_counter() - start
        print(f"torch threads={args.threads} run={run} sentences={len(texts)} "
              f"sentences_per_s={len(texts) / took:.1f}", flush=True)
    if args.vectors:
        json.dump(vecs.tolist(), open(args.vectors, "w"))


if __name__ == "__main__":
    main()
