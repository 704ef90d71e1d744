"""Request and response models. Inputs forbid unknown fields; each audience has its own outputs."""
