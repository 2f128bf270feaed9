"""Attention: the local masks, the dense and block-sparse attention layers, and saliency read off them."""
