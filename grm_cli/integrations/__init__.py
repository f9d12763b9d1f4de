"""Hooks for RL frameworks, each scoring in this process or through a running `grm serve` (`judge`):

  trl.trl_reward            TRL's GRPO reward function
  verl.compute_score        verl's custom reward function (and compute_score_batch for its batch manager)
  client.RewardClient       the HTTP client they use (status-aware errors, Retry-After honoured)

OpenRLHF needs no code here: it calls `grm serve`'s /get_reward (`--remote_rm_url http://HOST:PORT/get_reward`).
"""
