"""SPCT training (paper §3.2): the data stages that need only the GRM and the rules. `rft_data` builds the
rejective fine-tuning set; the LoRA trainers that consume it are not part of this package yet."""
