"""Fine-tuning FER models: the paper's per-distortion protocol and the curated protocol."""
