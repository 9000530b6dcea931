#!/usr/bin/env python3
"""Writes a stand-in umT5 tokenizer.json where the wrapper's own is missing.

ComfyUI-WanVideoWrapper loads its umT5 tokenizer from configs/T5_tokenizer (spiece.model and
tokenizer.json are large files that source copies without their large-file data lack; the image's
git clone has them). The benchmark needs only the shape of the contract: a Unigram vocabulary of
256,000 pieces with <pad>=0, </s>=1, <s>=2, <unk>=3, plus the 300 <extra_id_N> tokens at 256000..256299
as tokenizer_config.json there declares them. Token ids stay inside the text encoder's embedding, so
the encoder runs exactly as with the real file; the text it encodes is meaningless, as are the weights.

  python bench/gpu/make_tokenizer.py <ComfyUI-WanVideoWrapper dir>     (never overwrites a real file)
"""

import json
import os
import sys

PIECES = 256_000
SPECIALS = ["<pad>", "</s>", "<s>", "<unk>"]


def main(wrapper_dir):
    folder = os.path.join(wrapper_dir, "configs", "T5_tokenizer")
    target = os.path.join(folder, "tokenizer.json")
    if os.path.exists(target) and os.path.getsize(target) > 1_000_000:
        print(f"make_tokenizer: {target} exists; left alone")
        return 0
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = [(s, 0.0) for s in SPECIALS]
    # Byte-ish coverage first so every input tokenizes, then filler pieces with falling scores.
    chars = [chr(c) for c in range(32, 127)] + [chr(c) for c in range(0xA0, 0x800)]
    vocab += [("\u2581" + c, -5.0) for c in chars] + [(c, -6.0) for c in chars]
    vocab += [(f"\u2581w{i}", -10.0 - i * 1e-5) for i in range(PIECES - len(vocab))]
    assert len(vocab) == PIECES
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    config = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
    from tokenizers import AddedToken

    added = sorted(config["added_tokens_decoder"].items(), key=lambda kv: int(kv[0]))
    extras = [v["content"] for k, v in added if int(k) >= PIECES]
    tok.add_special_tokens([AddedToken(t, special=True) for t in extras])
    tok.save(target)
    check = Tokenizer.from_file(target)
    assert check.get_vocab_size() == PIECES + len(extras), check.get_vocab_size()
    assert check.token_to_id("<extra_id_0>") == 256299 and check.token_to_id("</s>") == 1
    print(f"make_tokenizer: wrote {target} ({check.get_vocab_size()} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
