"""Where an origin's credentials come from when fetching: the workspace's URLs (token paths,
user:password, ${VAR}), or netrc; never the lock."""

from __future__ import annotations

import base64

import pytest

from envbuild.artifacts.fetch import Credentials


def basic(userinfo: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(userinfo.encode()).decode()}


PAIRS = (
    ("https://conda.example/chan", "https://conda.example/t/tok-123/chan"),
    ("https://repo.example/conda", "https://bob:s3cret@repo.example/conda"),
    ("https://pypi.example/simple", "https://ann:p%40ss@pypi.example/simple"),
    (
        "https://env.example/simple",
        "https://${ENVBUILD_T_USER}:${ENVBUILD_T_PASS}@env.example/simple",
    ),
)


@pytest.mark.parametrize(
    ("url", "real", "headers"),
    [
        # a token path is restored by prefix
        ("https://conda.example/chan/linux-64/a-1-0.conda",
         "https://conda.example/t/tok-123/chan/linux-64/a-1-0.conda", {}),
        # user:password becomes a header, never part of the URL opened
        ("https://repo.example/conda/noarch/b-1-0.conda",
         "https://repo.example/conda/noarch/b-1-0.conda", basic("bob:s3cret")),
        # files on an index's host get the index's credentials; %40 is decoded
        ("https://pypi.example/files/c-1.0-py3-none-any.whl",
         "https://pypi.example/files/c-1.0-py3-none-any.whl", basic("ann:p@ss")),
        # ${VAR} references come from the environment
        ("https://env.example/simple/d/d-1.tar.gz", "https://env.example/simple/d/d-1.tar.gz",
         basic("eve:pw")),
        # anything else: as it is
        ("https://other.example/x.whl", "https://other.example/x.whl", {}),
    ],
)  # fmt: skip
def test_credentials_for_origin(monkeypatch, tmp_path, url, real, headers):
    monkeypatch.setenv("ENVBUILD_T_USER", "eve")
    monkeypatch.setenv("ENVBUILD_T_PASS", "pw")
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert Credentials(PAIRS).real(url) == (real, headers)


def test_netrc_when_the_workspace_has_none(monkeypatch, tmp_path):
    rc = tmp_path / "netrc"
    rc.write_text("machine files.example login carl password n3trc\n")
    rc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(rc))
    assert Credentials(()).real("https://files.example/a.whl") == (
        "https://files.example/a.whl",
        basic("carl:n3trc"),
    )
