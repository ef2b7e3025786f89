import os

import pytest

from tfshared.native_output import native_output_held


def test_native_output_is_held_back_when_the_call_succeeds(capfd):
    with native_output_held():
        os.write(1, b"fully_quantize: 0\n")  # what a C++ library writes, past Python's sys.stdout
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\n")
    out, err = capfd.readouterr()
    assert "fully_quantize" not in out + err and "oneDNN" not in out + err


def test_native_output_is_shown_when_the_call_fails(capfd):
    with pytest.raises(RuntimeError, match="conversion failed"):
        with native_output_held():
            os.write(2, b"error: op FOO is not supported\n")
            raise RuntimeError("conversion failed")
    assert "op FOO is not supported" in capfd.readouterr().err
