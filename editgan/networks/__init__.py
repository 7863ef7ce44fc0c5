"""Plain-PyTorch networks, one module each: the StyleGAN2 generator, the segmentation branch, LPIPS, the encoders."""
