"""llama.cpp reference for `splai bench chat` (run through scripts/bench-llamacpp --chat).

The same GGUF, the same prompts (written by `splai bench chat --write-prompts`), the same ChatML
template, greedy, up to --max-tokens tokens, stopping at end of turn. Three ways to serve N
requests that all arrive at once:
  sequential      one after another (llama-cpp-python's usual server loop);
  batched         all N sequences in one llama_decode per step (llama.cpp's continuous batching);
  batched-prefix  the same, with the prompt prefix they share computed once and copied
                  (llama_memory_seq_cp).
Per N it prints requests/s, generated tokens/s and latency p50/p95 (a request's latency: from
the moment all arrived to its last token).
"""

import argparse
import ctypes
import json
import time

import llama_cpp
import numpy as np


def chat(system: str, user: str) -> str:
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


class Engine:
    def __init__(self, model_path: str, threads: int, seqs: int):
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(model_path.encode(), mparams)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = 8192
        cparams.n_batch = 2048
        cparams.n_ubatch = 512
        cparams.n_seq_max = max(seqs, 1)
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = True  # one KV buffer for all sequences: seq_cp needs it
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(2048, 0, max(seqs, 1))
        self.stops = {llama_cpp.llama_vocab_eos(self.vocab), *self.tokenize("<|im_end|>")}

    def tokenize(self, text: str) -> list:
        raw = text.encode()
        buf = (llama_cpp.llama_token * (len(raw) + 16))()
        n = llama_cpp.llama_tokenize(self.vocab, raw, len(raw), buf, len(buf), False, True)
        return list(buf[:n])

    def decode(self, items: list) -> None:
        """items: (token, pos, seq, wants_logits); in chunks of the batch size."""
        for start in range(0, len(items), 2048):
            chunk = items[start:start + 2048]
            b = self.batch
            for i, (tok, pos, seq, logits) in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq
                b.logits[i] = 1 if logits else 0
            b.n_tokens = len(chunk)
            if llama_cpp.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
            self.last_chunk = chunk

    def greedy(self, i: int) -> int:
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))))


def serve_batched(e: Engine, prompts: list, max_tokens: int, share_prefix: bool) -> tuple:
    llama_cpp.llama_memory_clear(e.mem, True)
    start = time.perf_counter()
    n = len(prompts)
    skip = 0
    if share_prefix and n > 1:
        common = len(prompts[0])
        for p in prompts[1:]:
            common = min(common, next((i for i, (a, b) in enumerate(zip(prompts[0], p)) if a != b), min(len(p), common)))
        skip = max(common - 1, 0)  # leave every prompt at least one token of its own
        if skip:
            e.decode([(t, pos, 0, False) for pos, t in enumerate(prompts[0][:skip])])
            for s in range(1, n):
                llama_cpp.llama_memory_seq_cp(e.mem, 0, s, 0, skip)
    # Prefill the rest of every prompt; logits for each prompt's last token.
    items = [(t, pos, s, pos == len(p) - 1) for s, p in enumerate(prompts) for pos, t in enumerate(p) if pos >= skip]
    nexts, done, outs = {}, {}, [0] * n
    for c in range(0, len(items), 2048):
        chunk = items[c:c + 2048]
        e.decode(chunk)
        for i, (_, _, s, logits) in enumerate(chunk):
            if logits:
                nexts[s] = e.greedy(i)
    pos = [len(p) for p in prompts]
    while True:
        active = []
        for s in range(n):
            if s in done:
                continue
            tok = nexts[s]
            if tok in e.stops:
                done[s] = time.perf_counter() - start
                continue
            outs[s] += 1
            if outs[s] == max_tokens:
                done[s] = time.perf_counter() - start
                continue
            active.append(s)
        if not active:
            break
        e.decode([(nexts[s], pos[s], s, True) for s in active])
        for i, s in enumerate(active):
            nexts[s] = e.greedy(i)
            pos[s] += 1
    return time.perf_counter() - start, sum(outs), [done[s] for s in range(n)]


def serve_sequential(e: Engine, prompts: list, max_tokens: int) -> tuple:
    start = time.perf_counter()
    latencies, total = [], 0
    for p in prompts:
        llama_cpp.llama_memory_clear(e.mem, True)
        e.decode([(t, pos, 0, pos == len(p) - 1) for pos, t in enumerate(p)])
        tok, out, pos = e.greedy(len(p) - 1 - (len(p) - 1) // 2048 * 2048), 0, len(p)
        while tok not in e.stops:
            out += 1
            if out == max_tokens:
                break
            e.decode([(tok, pos, 0, True)])
            tok = e.greedy(0)
            pos += 1
        total += out
        latencies.append(time.perf_counter() - start)
    return time.perf_counter() - start, total, latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--concurrency", default="1,4,8,16,32")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="sequential,batched,batched-prefix")
    args = ap.parse_args()
    spec = json.load(open(args.prompts))
    sizes = [int(x) for x in args.concurrency.split(",")]
    e = Engine(args.model, args.threads, max(sizes))
    prompts = [e.tokenize(chat(spec["system"], u)) for u in spec["users"]]
    serve_batched(e, prompts[-1:], 4, False)  # warm up
    for mode in args.modes.split(","):
        for n in sizes:
            batch = prompts[:n]
            if mode == "sequential":
                wall, tokens, lat = serve_sequential(e, batch, args.max_tokens)
            else:
                wall, tokens, lat = serve_batched(e, batch, args.max_tokens, mode == "batched-prefix")
            lat.sort()
            p50 = lat[len(lat) // 2]
            p95 = lat[min(len(lat) - 1, max(0, int(np.ceil(0.95 * len(lat))) - 1))]
            print(f"llamacpp mode={mode} threads={args.threads} n={n} req_per_s={n / wall:.2f} "
                  f"tok_per_s={tokens / wall:.1f} completion_tokens={tokens} p50_s={p50:.2f} p95_s={p95:.2f} "
                  f"prompt_tokens={sum(len(p) for p in batch)}", flush=True)


if __name__ == "__main__":
    main()
