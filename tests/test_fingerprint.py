"""Model fingerprints: two files that differ only inside one tensor (same size, same header, same ends, as
a merged-and-requantised model can) must not share a fingerprint, or the sample cache would replay the
other model's samples and a meta RM trained on it would pass its check."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

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


def _reference_fields(reader) -> dict:
    """PyPI gguf's reading of every metadata field, in the shapes `read_header` gives (string arrays: a count)."""
    from grm_cli.models.gguf import StringArray

    out = {}
    for key, f in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        kinds = f.types
        if kinds[0] == gguf.GGUFValueType.ARRAY:
            out[key] = StringArray(len(f.data)) if kinds[-1] == gguf.GGUFValueType.STRING else [f.parts[i].tolist()[0] for i in f.data]
        elif kinds[0] == gguf.GGUFValueType.STRING:
            out[key] = bytes(f.parts[f.data[0]]).decode("utf-8", "replace")
        else:
            out[key] = f.parts[f.data[0]].tolist()[0]
    return out


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_the_header_reader_reads_what_pypi_gguf_reads(which, tiny_model, smollm2_path):
    """models/gguf.py walks the header itself (PyPI's reader took 4 s over SmolLM2's vocabulary): every field,
    every tensor's shape, type, size and offset must equal that reader's."""
    from grm_cli.models.gguf import StringArray, read_header

    path = tiny_model if which == "tiny" else smollm2_path
    ours, ref = read_header(path), gguf.GGUFReader(str(path), "r")
    expected = _reference_fields(ref)
    assert set(ours.fields) == set(expected)
    for key, value in expected.items():
        got = ours.fields[key]
        if isinstance(value, StringArray):
            assert isinstance(got, StringArray) and len(got) == len(value), key
        elif isinstance(value, float):
            assert got == pytest.approx(value), key
        else:
            assert got == value, key
    assert [(t.name, t.shape, t.ggml_type, t.offset, t.n_bytes) for t in ours.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type), int(t.data_offset), int(t.n_bytes)) for t in ref.tensors]


def test_a_truncated_header_is_a_clear_error(tiny_model, tmp_path):
    from grm_cli.errors import ModelError
    from grm_cli.models.gguf import read_header

    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:200])
    with pytest.raises(ModelError, match="cannot read the GGUF header .*is the file complete"):
        read_header(cut)
