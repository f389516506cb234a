"""Parameters of the vision towers of multimodal models (reported beside the language model, never in its P).

Layouts as built by transformers 5.23 (SigLIP: Zhai et al. 2023, arXiv:2303.15343, a ViT of Dosovitskiy et al.
2021; CLIP: Radford et al. 2021; Pixtral: Mistral AI 2024, arXiv:2410.07073; Llama 4's ViT with a pixel-shuffle adapter: the Llama 4 model card). Symbols:
D width, F MLP width, L layers, p patch, R image side, C channels. Every ViT layer is two LayerNorms with bias,
Q, K, V, O with biases (4·D² + 4·D) and a plain biased MLP (2·D·F + F + D).
"""

from __future__ import annotations


def vit_layer_params(D: int, F: int) -> int:
    """One pre-norm ViT encoder layer: 2 LayerNorms (2·2·D), attention 4·D² + 4·D, MLP 2·D·F + F + D."""
    return 4 * D + 4 * D * D + 4 * D + 2 * D * F + F + D


def siglip_params(D: int, F: int, L: int, patch: int, image: int, channels: int = 3, head: bool = False) -> int:
    """SigLIP vision model: a biased patch convolution C·p²·D + D, a learned position table (R/p)²·D, L layers,
    a post LayerNorm 2·D and, with ``head``, the attention-pooling head (probe D, in-projection 3·D² + 3·D,
    out-projection D² + D, LayerNorm 2·D, MLP 2·D·F + F + D)."""
    n = (image // patch) ** 2
    body = channels * patch * patch * D + D + n * D + L * vit_layer_params(D, F) + 2 * D
    pool = D + 3 * D * D + 3 * D + D * D + D + 2 * D + 2 * D * F + F + D if head else 0
    return body + pool


def clip_params(D: int, F: int, L: int, patch: int, image: int, channels: int = 3) -> int:
    """CLIP vision model: class embedding D, bias-free patch convolution C·p²·D, positions ((R/p)² + 1)·D,
    pre and post LayerNorms 2·2·D, L layers."""
    n = (image // patch) ** 2 + 1
    return D + channels * patch * patch * D + n * D + 4 * D + L * vit_layer_params(D, F)


def llama4_vision_params(D: int, F: int, L: int, patch: int, image: int, channels: int, adapter_in: int,
                         adapter_out: int) -> int:
    """Llama 4 vision encoder: class embedding D, positions ((R/p)² + 1)·D, a bias-free unfold projection
    C·p²·D, pre/post LayerNorms 2·2·D, L layers, and the pixel-shuffle adapter F·P_in + P_out² (no biases)."""
    n = (image // patch) ** 2 + 1
    return (D + n * D + channels * patch * patch * D + 4 * D + L * vit_layer_params(D, F)
            + F * adapter_in + adapter_out * adapter_out)


def pixtral_params(D: int, F: int, L: int, patch: int, channels: int = 3) -> int:
    """Pixtral vision encoder (Mistral 3): a bias-free patch convolution C·p²·D, an RMSNorm D, and L layers of
    two RMSNorms (2·D), bias-free Q, K, V, O (4·D²) and a gated bias-free MLP (3·D·F). RoPE: no position table."""
    return channels * patch * patch * D + D + L * (2 * D + 4 * D * D + 3 * D * F)
