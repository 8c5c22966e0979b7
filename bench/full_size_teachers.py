"""Randomly initialised teachers at the published checkpoints' full size, for ``bench teacher``.

``build_full`` writes the model with the published configuration (parameter count, input size)
and processor settings, and a tokenizer of the published vocabulary size, as a ``save_pretrained``
folder the product loads through its real ``from_pretrained`` path. Each is hundreds of MB: they
are built into a cache folder, never into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

from .random_teachers import DEFAULT_WORDS, bert_vocab, write_clip_tokenizer

#: name -> (teacher, what it is): the published checkpoints ``build_full`` reproduces at random.
FULL_SIZE = {
    "grounding-dino-tiny": ("grounding_dino", "IDEA-Research/grounding-dino-tiny: Swin-T + BERT-base"),
    "grounding-dino-base": ("grounding_dino", "IDEA-Research/grounding-dino-base: Swin-B + BERT-base"),
    "owlv2-base": ("owlv2", "google/owlv2-base-patch16-ensemble: ViT-B/16 at 960 px"),
    "clipseg-rd64": ("clipseg", "CIDAS/clipseg-rd64-refined: ViT-B/16 at 352 px, decoder width 64"),
    "sam-vit-base": ("sam", "facebook/sam-vit-base: ViT-B at 1024 px"),
}


def build_full(name: str, path: str | Path, seed: int = 0) -> Path:
    """Write the randomly initialised full-size model ``name`` (``FULL_SIZE``) with its processor
    (the published one's settings; a tokenizer of the published vocabulary size) to ``path``."""
    import torch
    import transformers as tf

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if name.startswith("grounding-dino"):
        (path / "vocab.txt").write_text("\n".join(bert_vocab(DEFAULT_WORDS, 30522)) + "\n")
        (path / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 256})
        )
        processor = tf.GroundingDinoProcessor(
            image_processor=tf.GroundingDinoImageProcessor(), tokenizer=tf.AutoTokenizer.from_pretrained(path)
        )
        config = tf.GroundingDinoConfig()
        if name.endswith("base"):
            config = tf.GroundingDinoConfig(
                backbone_config=tf.SwinConfig(
                    image_size=384,
                    embed_dim=128,
                    depths=[2, 2, 18, 2],
                    num_heads=[4, 8, 16, 32],
                    window_size=12,
                    out_features=["stage2", "stage3", "stage4"],
                )
            )
        model = tf.GroundingDinoForObjectDetection(config)
    elif name == "owlv2-base":
        write_clip_tokenizer(path, model_max_length=16, vocab_size=49408)
        processor = tf.Owlv2Processor(
            image_processor=tf.Owlv2ImageProcessor(size={"height": 960, "width": 960}),
            tokenizer=tf.AutoTokenizer.from_pretrained(path),
        )
        model = tf.Owlv2ForObjectDetection(
            tf.Owlv2Config(text_config={"max_position_embeddings": 16}, vision_config={"image_size": 960})
        )
        with torch.no_grad():  # as in the tiny one: random box weights would saturate every box
            model.box_head.dense2.weight.mul_(0.002)
            model.box_head.dense2.bias.zero_()
    elif name == "clipseg-rd64":
        write_clip_tokenizer(path, model_max_length=77, vocab_size=49408)
        image_processor = tf.ViTImageProcessor(
            size={"height": 352, "width": 352}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
        )
        processor = tf.CLIPSegProcessor(
            image_processor=image_processor, tokenizer=tf.AutoTokenizer.from_pretrained(path)
        )
        model = tf.CLIPSegForImageSegmentation(
            tf.CLIPSegConfig(vision_config={"patch_size": 16, "image_size": 352}, reduce_dim=64)
        )
    elif name == "sam-vit-base":
        processor = tf.SamProcessor(image_processor=tf.SamImageProcessor())
        model = tf.SamModel(tf.SamConfig())
    else:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(FULL_SIZE)}")
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path
