"""Model fingerprints: two files that differ only inside one tensor (same size, same header, same ends, as
a merged-and-requantised model can) must not share a fingerprint, or the sample cache would replay the
other model's samples and a meta RM trained on it would pass its check."""

from __future__ import annotations

import numpy as np

from grm_cli.models.fingerprint import model_fingerprint
from grm_cli.models.gguf import tensor_offsets as gguf_tensor_offsets


def _big_gguf(path, seed: int = 0):
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    rng = np.random.default_rng(seed)
    for i in range(4):  # 4 x 1 MiB of f32: the middle tensors sit past the first and before the last MiB
        w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((512, 512)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_tensor_offsets_match_the_gguf_reader(tmp_path):
    import gguf

    path = _big_gguf(tmp_path / "m.gguf")
    assert gguf_tensor_offsets(path) == [int(t.data_offset) for t in gguf.GGUFReader(str(path), "r").tensors]


def test_a_change_inside_a_middle_tensor_changes_the_fingerprint(tmp_path, tiny_model):
    a = _big_gguf(tmp_path / "a.gguf")
    data = bytearray(a.read_bytes())
    middle = gguf_tensor_offsets(a)[2]
    assert (1 << 20) < middle < len(data) - (1 << 20)
    data[middle:middle + 8] = bytes(8)  # what merging an adapter into this tensor would change
    b = tmp_path / "b.gguf"
    b.write_bytes(bytes(data))
    assert a.stat().st_size == b.stat().st_size
    assert model_fingerprint(a) != model_fingerprint(b)
    assert model_fingerprint(a) == model_fingerprint(tmp_path / "a.gguf")  # and it is stable
    assert model_fingerprint(tiny_model) == model_fingerprint(tiny_model)


def test_a_file_that_is_not_gguf_still_gets_sampled(tmp_path):
    a = tmp_path / "x.bin"
    a.write_bytes(bytes(5 << 20))
    b = tmp_path / "y.bin"
    data = bytearray(a.read_bytes())
    data[(5 << 20) * 100 // 256] = 1
    b.write_bytes(bytes(data))
    assert model_fingerprint(a) != model_fingerprint(b)
