"""SPCT training (paper §3.2) as LoRA adapters, and the way back into llama.cpp.

Data: `rft_data` (rejective sampling with the GRM). Stages: `stages.fit_rft` (LoRA SFT on the accepted
trajectories) and `stages.fit_rl` (GRPO with the rule reward of `grpo.RuleReward`). Back to llama.cpp:
`export.write_adapter_gguf` and `merge.merge_into_gguf`. torch, transformers, PEFT and TRL are imported
only inside the functions that need them (the `train` extra), so scoring never pays for them.
"""
