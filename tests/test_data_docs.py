"""Every checksum the code checks is the one the docs publish (and the other way round)."""
import re
from pathlib import Path

import pytest

from minibng.data import cifar, mnist, ptb, rt_polarity

REPO = Path(__file__).resolve().parents[1]


def code_sums():
    specs = [*mnist.FILES["mnist"].values(), *mnist.FILES["fashion-mnist"].values(), *ptb.FILES.values(),
             *rt_polarity.FILES.values()]
    for layout in cifar.DATASETS.values():
        specs += [layout.archive, *layout.train, *layout.test]
    sums = {s for spec in specs for s in spec.sha256}
    return sums | {spec.content_sha256 for spec in specs if spec.content_sha256}


@pytest.mark.parametrize("doc", ["datasets/README.md", "docs/data.md"])
def test_documented_checksums_match_the_code(doc):
    text = (REPO / doc).read_text(encoding="utf-8")
    documented = set(re.findall(r"`([0-9a-f]{64})`", text))
    assert documented == code_sums()
