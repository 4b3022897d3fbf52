"""Write a tiny GGUF chat model that llama.cpp loads: a llama-architecture model with
random weights (2 layers, 64 dimensions) and a character-level tokenizer.

No small GGUF chat model is to be had from a package registry, so
``scripts/real_server_tools.py`` makes one: what it tests is the real server's wire format,
not the model's wisdom. The text such a model writes is noise, but llama-cpp-python's
``chatml-function-calling`` handler constrains a forced tool call with a JSON-schema
grammar, so the server still answers with well-formed tool calls.

The tokenizer is SentencePiece-shaped (``tokenizer.ggml.model = "llama"``): one token per
printable ASCII character, ``▁`` for the space, the 256 byte-fallback tokens ``<0x00>`` ..
``<0xFF>`` for everything else (newlines, non-ASCII), and the ChatML control tokens
``<|im_start|>`` and ``<|im_end|>``; ``<|im_end|>`` ends a turn (EOS and EOT), which is
what lets a completed grammar stop generation. Every string is spellable, so every grammar
is satisfiable.

Run it with an interpreter that has ``gguf`` and ``numpy`` (the llama-cpp-python venv)::

    /tmp/llama-venv/bin/python scripts/tiny_gguf.py /tmp/tiny-chatml.gguf --seed 0

The same seed writes the same file, byte for byte.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf
import numpy as np

LAYERS = 2
EMBED = 64
HEADS = 4
FEED_FORWARD = 128
CONTEXT = 4096  # the chatml-function-calling prompt is long, one token per character

SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
IM_END = SPECIAL.index("<|im_end|>")


def vocabulary() -> tuple[list[str], list[int]]:
    """The tokens and their types: the specials, the byte fallbacks, then ``▁`` and the
    printable ASCII characters."""
    tokens = list(SPECIAL)
    types = [gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * (len(SPECIAL) - 1)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    chars = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)]
    tokens += chars
    types += [gguf.TokenType.NORMAL] * len(chars)
    return tokens, [int(t) for t in types]


def write(path: Path, seed: int) -> int:
    """Write the model to ``path``; return its vocabulary size."""
    tokens, types = vocabulary()
    rng = np.random.default_rng(seed)

    def matrix(rows: int, cols: int) -> np.ndarray:
        # Small weights keep the activations finite through the residual stream.
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("providerhub tiny random chatml")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(IM_END)
    writer.add_eot_token_id(IM_END)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)

    writer.add_tensor("token_embd.weight", matrix(len(tokens), EMBED))
    for i in range(LAYERS):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones(EMBED))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", matrix(EMBED, EMBED))
        writer.add_tensor(f"{block}.ffn_norm.weight", ones(EMBED))
        writer.add_tensor(f"{block}.ffn_gate.weight", matrix(FEED_FORWARD, EMBED))
        writer.add_tensor(f"{block}.ffn_up.weight", matrix(FEED_FORWARD, EMBED))
        writer.add_tensor(f"{block}.ffn_down.weight", matrix(EMBED, FEED_FORWARD))
    writer.add_tensor("output_norm.weight", ones(EMBED))
    writer.add_tensor("output.weight", matrix(len(tokens), EMBED))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .gguf file to write")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the random weights")
    args = parser.parse_args()
    size = write(args.out, args.seed)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {size} tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
