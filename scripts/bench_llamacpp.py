"""llama.cpp reference for `splai bench infer` (run through scripts/bench-llamacpp).

Same GGUF, same ChatML prompt (QUESTION below is src/bench/infer.rs's QUESTION), greedy, up to
--tokens tokens, stopping at end of turn like candle. Measured like the candle bench: prefill =
prompt forward + first greedy pick (time to first token), decode = each later token's forward +
pick. llama.cpp's own timings (forward passes only) are printed beside them.
"""

import argparse
import ctypes
import os
import sys
import time

import llama_cpp
import numpy as np

QUESTION = (
    "Summarise the main problems customers report: login fails after a password reset; "
    "the invoice PDF is blank; search is slow in the afternoon; the mobile app logs users "
    "out; exports time out for large accounts."
)
PROMPT = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"


def greedy(llm: llama_cpp.Llama, n_vocab: int) -> int:
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))
    return int(np.argmax(logits))


def bench(llm: llama_cpp.Llama, threads: int, runs: int, max_tokens: int) -> None:
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    n_vocab = llm.n_vocab()
    stops = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
    ctx = llm._ctx.ctx
    for run in range(runs):
        llm.reset()
        llama_cpp.llama_perf_context_reset(ctx)
        out = []
        start = time.perf_counter()
        llm.eval(prompt)
        tok = greedy(llm, n_vocab)
        first = time.perf_counter() - start
        while tok not in stops:
            out.append(tok)
            if len(out) == max_tokens:
                break  # like candle: no forward pass for a token that will not be sampled
            llm.eval([tok])
            tok = greedy(llm, n_vocab)
        total = time.perf_counter() - start
        perf = llama_cpp.llama_perf_context(ctx)
        decode_tokens = max(len(out) - 1, 1)
        print(
            f"llamacpp threads={threads} run={run} prompt_tokens={len(prompt)} "
            f"prefill_tok_per_s={len(prompt) / first:.1f} completion_tokens={len(out)} "
            f"decode_tok_per_s={decode_tokens / max(total - first, 1e-9):.1f} "
            f"internal_prompt_tok_per_s={1000 * perf.n_p_eval / max(perf.t_p_eval_ms, 1e-9):.1f} "
            f"internal_decode_tok_per_s={1000 * perf.n_eval / max(perf.t_eval_ms, 1e-9):.1f}",
            flush=True,
        )
        if run == 0:
            text = llm.detokenize(out).decode(errors="replace").strip()
            print(f"llamacpp text={text!r}", flush=True)


METRICS = ("prefill_tok_per_s", "decode_tok_per_s")


def summarize(path: str) -> None:
    """Medians and ranges per (engine, weights, threads) of the lines `bench-llamacpp --compare`
    wrote, and candle/llama.cpp ratios of the medians and of the best runs (the least disturbed
    by other work on a shared machine)."""
    samples = {}
    for line in open(path):
        fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        key = (line.split()[0], fields["weights"], int(fields["threads"]))
        for metric in METRICS:
            samples.setdefault(key + (metric,), []).append(float(fields[metric]))
    median = {k: float(np.median(v)) for k, v in samples.items()}
    print("engine   weights threads  prefill tok/s (median, min-max, n)   decode tok/s (median, min-max, n)")
    for key in sorted({k[:3] for k in samples}):
        cols = []
        for metric in METRICS:
            v = samples[key + (metric,)]
            cols.append(f"{median[key + (metric,)]:7.1f} ({min(v):.1f}-{max(v):.1f}, {len(v)})")
        print(f"{key[0]:8} {key[1]:7} {key[2]:7}  {cols[0]:34}   {cols[1]}")
    for engine, weights, threads in sorted({k[:3] for k in samples}):
        ref = ("llamacpp", "file", threads)
        if engine != "candle" or ref + ("decode_tok_per_s",) not in median:
            continue
        med = [median[(engine, weights, threads, m)] / median[ref + (m,)] for m in METRICS]
        best = [max(samples[(engine, weights, threads, m)]) / max(samples[ref + (m,)]) for m in METRICS]
        print(
            f"candle {weights} / llama.cpp at {threads} thread(s): medians: prefill {med[0]:.2f}x, "
            f"decode {med[1]:.2f}x; bests: prefill {best[0]:.2f}x, decode {best[1]:.2f}x"
        )


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=os.path.join(
            root, "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
        ),
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--summarize", metavar="FILE", help="summarise a --compare log instead")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    if not os.path.isfile(args.model):
        sys.exit(f"model missing at {args.model} (run scripts/models)")
    print(f"llama-cpp-python {llama_cpp.__version__} model={args.model}", flush=True)
    for threads in (int(t) for t in args.threads.split(",")):
        llm = llama_cpp.Llama(
            model_path=args.model,
            n_ctx=512,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        bench(llm, threads, args.runs, args.tokens)
        del llm


if __name__ == "__main__":
    main()
