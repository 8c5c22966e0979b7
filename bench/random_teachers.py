"""Tiny randomly initialised teachers of the published architectures, for tests without weights.

No weights can be downloaded here, so tests build the same architectures from small config
objects, ``save_pretrained`` them (model + processor) to a folder and load them back through the
teachers' real ``from_pretrained`` path: each keeps its architecture's layer types, heads and
processor at a fraction of the full model's size (``full_size_teachers`` builds them at full size).
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


def bert_vocab(words: Iterable[str], size: int = 0) -> list[str]:
    """A BERT vocabulary holding ``words`` and the special tokens at bert-base-uncased's ids, padded
    with ``[unusedN]`` to ``size`` entries (0: as few as needed)."""
    fixed = {i: t for t, i in _BERT_IDS.items()}
    extra = [w for w in dict.fromkeys(w.lower() for w in words) if w not in _BERT_IDS]
    size = max(size, max(fixed) + 1, 104 + len(extra) + len(fixed))
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
    vocab = bert_vocab(words)
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


# ---- CLIP-style byte-level BPE tokenizer (OWLv2, CLIPSeg) ------------------------------------------


def _bytes_to_unicode() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the bytes 0..255, in CLIP's id order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_clip_tokenizer(
    path: str | Path, *, words: Iterable[str] = DEFAULT_WORDS, model_max_length: int = 77, vocab_size: int = 0
) -> int:
    """Write a small CLIP tokenizer (``vocab.json`` + ``merges.txt`` + ``tokenizer_config.json``) to
    ``path`` and return its vocabulary size.

    Like the real one: every byte-level character alone and with ``</w>``, merges that make each of
    ``words`` one token, and ``<|startoftext|>`` / ``<|endoftext|>`` as the last two ids (so the
    text model's pooled output, taken at the first ``eos_token_id``, works as with real CLIP).
    Any other text still tokenizes, character by character. ``vocab_size``: padded with unused
    tokens to this many entries (0: as few as needed).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for tok in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(tok, len(vocab))
    merges: list[str] = []
    for word in dict.fromkeys(w.lower() for w in words):
        if len(word) < 2 or not word.isascii():
            continue
        left = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            merge = f"{left} {right}"
            if merge not in merges:
                merges.append(merge)
            left = left + right
            vocab.setdefault(left, len(vocab))
    while len(vocab) < vocab_size - 2:
        vocab[f"<|unused{len(vocab)}|>"] = len(vocab)
    vocab.setdefault("<|startoftext|>", len(vocab))
    vocab.setdefault("<|endoftext|>", len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "model_max_length": int(model_max_length),
            }
        )
    )
    return len(vocab)


def _tiny_clip_text(vocab_size: int, tokenizer, max_len: int) -> dict:
    """A one-layer CLIP text tower's configuration for ``tokenizer``'s vocabulary and special ids."""
    return {
        "vocab_size": int(vocab_size),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": max_len,
        "pad_token_id": int(tokenizer.pad_token_id),
        "bos_token_id": int(tokenizer.bos_token_id),
        "eos_token_id": int(tokenizer.eos_token_id),
    }


def _tiny_vit(side: int, patch: int, *, layers: int) -> dict:
    """A tiny ViT vision tower's configuration for ``side`` squared images."""
    return {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "image_size": side,
        "patch_size": int(patch),
    }


def build_tiny_owlv2(
    path: str | Path, *, words: Iterable[str] = DEFAULT_WORDS, image_side: int = 64, patch: int = 16, seed: int = 0
) -> Path:
    """Write a tiny random OWLv2 (model + processor) to ``path`` and return it.

    Loads with ``AutoProcessor`` / ``AutoModelForZeroShotObjectDetection.from_pretrained`` like the
    real ``google/owlv2-base-patch16-ensemble``: the same image processor (pads to a square at the
    bottom/right, then resizes to ``image_side``) and a CLIP tokenizer padding to 16 tokens.
    ``(image_side / patch) ** 2`` boxes per image.
    """
    import torch
    from transformers import AutoTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2Processor
    from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

    path = Path(path)
    max_len = 16  # as the real checkpoint: the processor pads every query to max_length
    vocab_size = write_clip_tokenizer(path, words=words, model_max_length=max_len)
    tokenizer = AutoTokenizer.from_pretrained(path)
    side = int(image_side)
    image_processor = Owlv2ImageProcessorPil(size={"height": side, "width": side})
    processor = Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)
    config = Owlv2Config(
        text_config=_tiny_clip_text(vocab_size, tokenizer, max_len),
        vision_config=_tiny_vit(side, patch, layers=1),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(config).eval()
    # Random box-head weights (std ~1) saturate the box sigmoid: every box would be degenerate. A
    # small last layer keeps boxes near OWLv2's patch-grid prior, as in a trained model.
    with torch.no_grad():
        model.box_head.dense2.weight.mul_(0.002)
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_clipseg(
    path: str | Path, *, words: Iterable[str] = DEFAULT_WORDS, image_side: int = 64, patch: int = 16, seed: int = 0
) -> Path:
    """Write a tiny random CLIPSeg (model + processor) to ``path`` and return it.

    Loads with ``AutoProcessor`` / ``CLIPSegForImageSegmentation.from_pretrained`` like the real
    ``CIDAS/clipseg-rd64-refined``: a ViT image processor resizing to ``image_side`` squared (the
    logits come out at that size) and a CLIP tokenizer. Every ``extract_layers`` index is below the
    vision model's ``num_hidden_layers``.
    """
    import torch
    from transformers import AutoTokenizer, CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    path = Path(path)
    vocab_size = write_clip_tokenizer(path, words=words, model_max_length=77)
    tokenizer = AutoTokenizer.from_pretrained(path)
    side = int(image_side)
    image_processor = ViTImageProcessorPil(
        size={"height": side, "width": side},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = CLIPSegConfig(
        text_config=_tiny_clip_text(vocab_size, tokenizer, 77),
        vision_config=_tiny_vit(side, patch, layers=2),
        projection_dim=32,
        extract_layers=[0, 1],  # each < vision num_hidden_layers
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    torch.manual_seed(seed)
    model = CLIPSegForImageSegmentation(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_sam(path: str | Path, *, image_side: int = 64, patch: int = 8, seed: int = 0) -> Path:
    """Write a tiny random SAM (model + processor) to ``path`` and return it.

    Loads with ``AutoProcessor`` / ``SamModel.from_pretrained`` like the real ``facebook/sam-vit-base``:
    the processor resizes the longest side to ``image_side`` and pads to a square. The vision
    ``output_channels``, the prompt encoder and mask decoder ``hidden_size`` and twice the
    positional ``num_pos_feats`` are one size, as SAM requires.
    """
    import torch
    from transformers import SamConfig, SamModel, SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    side, patch, channels = int(image_side), int(patch), 32
    image_processor = SamImageProcessorPil(
        size={"longest_edge": side},
        pad_size={"height": side, "width": side},
        mask_size={"longest_edge": side // patch * 4},
        mask_pad_size={"height": side // patch * 4, "width": side // patch * 4},
    )
    processor = SamProcessor(image_processor=image_processor)
    config = SamConfig(
        vision_config={
            "hidden_size": 32,
            "output_channels": channels,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": side,
            "patch_size": patch,
            "window_size": 4,
            "global_attn_indexes": [1],
            "mlp_dim": 64,
            "num_pos_feats": channels // 2,
        },
        prompt_encoder_config={
            "hidden_size": channels,
            "image_size": side,
            "patch_size": patch,
            "mask_input_channels": 8,
        },
        mask_decoder_config={
            "hidden_size": channels,
            "mlp_dim": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
    )
    torch.manual_seed(seed)
    model = SamModel(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_clip_text(path: str | Path, *, words: Iterable[str] = DEFAULT_WORDS, seed: int = 0) -> Path:
    """A tiny randomly-initialised CLIP text encoder with projection (the student's part-name
    embedder) plus its tokenizer, saved with ``save_pretrained`` to ``path``."""
    import torch
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModelWithProjection

    path = Path(path)
    vocab_size = write_clip_tokenizer(path, words=words)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = CLIPTextConfig(
        vocab_size=int(vocab_size),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=24,
        pad_token_id=int(tokenizer.pad_token_id),
        bos_token_id=int(tokenizer.bos_token_id),
        eos_token_id=int(tokenizer.eos_token_id),
    )
    torch.manual_seed(seed)
    CLIPTextModelWithProjection(config).eval().save_pretrained(path)
    return path
