"""Tiny randomly-initialised models of the real teacher architectures, for tests without weights.

No weights can be downloaded here, so tests build the same architectures from small config
objects, ``save_pretrained`` them (model + processor) to a folder and load them back through the
teachers' real ``from_pretrained`` path. Sizes follow the measured facts in DESIGN §4.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

# Words the tiny tokenizer knows; anything else becomes [UNK] (still one token, still mapped).
DEFAULT_WORDS = (
    "seat back leg arm armrest top base handle body lid shade stand wing tail engine neck head "
    "blade tip chair table lamp mug airplane guitar knife the of a an"
).split()

# bert-base-uncased ids that Grounding DINO hard-codes as phrase delimiters
# (modeling_grounding_dino.SPECIAL_TOKENS = [CLS], [SEP], ".", "?"): the tiny vocab keeps them at
# the same ids so that the model's phrase masks behave as with the real checkpoint.
_BERT_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}


def _bert_vocab(words: Iterable[str]) -> list[str]:
    fixed = {i: t for t, i in _BERT_IDS.items()}
    extra = [w for w in dict.fromkeys(w.lower() for w in words) if w not in _BERT_IDS]
    size = max(max(fixed) + 1, 104 + len(extra) + len(fixed))
    vocab: list[str] = []
    it = iter(extra)
    for i in range(size):
        if i in fixed:
            vocab.append(fixed[i])
        elif i >= 104:
            vocab.append(next(it, f"[unused{i}]"))
        else:
            vocab.append(f"[unused{i}]")
    return vocab


def build_tiny_grounding_dino(
    path: str | Path,
    *,
    words: Iterable[str] = DEFAULT_WORDS,
    max_text_len: int = 32,
    num_queries: int = 20,
    image_side: int = 128,
    seed: int = 0,
) -> Path:
    """Write a tiny random Grounding DINO (model + processor) to ``path`` and return it.

    The folder loads with ``AutoProcessor`` / ``AutoModelForZeroShotObjectDetection.from_pretrained``
    like the real ``IDEA-Research/grounding-dino-tiny``. Images are resized to ``image_side`` (>= 128:
    the Swin stages need it). ``max_text_len`` is small so tests can exercise prompt chunking.
    """
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = _bert_vocab(words)
    # v5's BertTokenizer(vocab_file=...) ignores the file: write it and load the folder instead.
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 256})
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    side = int(image_side)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": side, "longest_edge": side})
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)

    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=128,
            patch_size=4,
            embed_dim=8,
            depths=[1] * 4,
            num_heads=[1] * 4,
            window_size=4,
            out_features=["stage2", "stage3", "stage4"],
        ),
        text_config=BertConfig(
            vocab_size=int(len(vocab)),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        d_model=32,  # GroupNorm(32, d_model)
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=int(num_queries),
        max_text_len=int(max_text_len),
    )
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
