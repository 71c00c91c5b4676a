"""QR codes of attendee codes read back to the code."""

import shutil
import subprocess

import pytest

from necreg.qr import qr_png, qr_svg


def test_svg_is_inline_and_labelled():
    svg = str(qr_svg("NEC-7K3QXA"))
    assert svg.startswith("<svg ")
    assert 'role="img"' in svg and 'aria-label="QR code of NEC-7K3QXA"' in svg
    assert "<script" not in svg and "href" not in svg


@pytest.mark.skipif(
    not shutil.which("zbarimg"), reason="zbarimg needed (apt-get install zbar-tools)"
)
def test_png_scans_back(tmp_path):
    path = tmp_path / "qr.png"
    path.write_bytes(qr_png("NEC-7K3QXA"))
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "NEC-7K3QXA"
