from test_resolve_pypi import *  # noqa
from pypi_index import Dist, make_wheel, make_source_tree

def show(r):
    print("RC", r.returncode); print("OUT", r.stdout); print("ERR", r.stderr)

@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_probe_stub_not_on_index(resolver, py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"six": ["1.17.0", "2.0"], "needs-six": [("1.0", "wheel", None, ["six>=1.10"])]})
    ws = write_manifest(tmp_path/"ws", ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": resolver}),
        {"m": {"python": "3.11", "conda": ["six"], "pypi": ["needs-six"]}})
    r = run_cli(ws, "resolve"); show(r)
    if r.returncode == 0:
        print(lock_packages(ws, "m", "linux-64").keys())

@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_probe_markers(resolver, py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"top": [("1.0", "wheel", None, ["macdep; sys_platform == 'darwin'", "lindep; sys_platform == 'linux'"])], "macdep": ["1.0"], "lindep": ["1.0"]})
    ws = write_manifest(tmp_path/"ws", ws_settings(py_channel, idx, ["linux-64", "osx-arm64"], **{"pypi-resolver": resolver}),
        {"m": {"python": "3.11", "pypi": ["top"]}})
    r = run_cli(ws, "resolve"); show(r)
    for a in ("linux-64", "osx-arm64"):
        print(a, sorted(pypi_pkgs(ws, "m", a)))

def test_probe_inline_path_with_file(py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"dep": ["1.0"]})
    ws = tmp_path/"ws"
    make_source_tree(ws/"localpkg", "localpkg", "4.0", ["dep"])
    write_manifest(ws, ws_settings(py_channel, idx, ["linux-64"]),
        {"m": {"python": "3.11", "file": "reqs/requirements.txt", "pypi": ["./localpkg"]}}, {"reqs/requirements.txt": "dep\n"})
    r = run_cli(ws, "resolve"); show(r)

def test_probe_direct_url_creds(py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"secretpkg": ["1.0"]}, auth=("user", SECRET))
    url = idx.file_url("secretpkg-1.0-py3-none-any.whl").replace("http://", f"http://user:{SECRET}@")
    ws = write_manifest(tmp_path/"ws", {"archs": ["linux-64"], "channels": [py_channel], "pypi-index": idx.auth_url},
        {"m": {"python": "3.11", "pypi": [f"secretpkg @ {url}"]}})
    r = run_cli(ws, "resolve"); show(r)
    print(files_holding(ws, SECRET))

@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_probe_unsat_creds(resolver, py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"secretpkg": ["1.0"]}, auth=("user", SECRET))
    ws = write_manifest(tmp_path/"ws", {"archs": ["linux-64"], "channels": [py_channel], "pypi-index": idx.auth_url, "pypi-resolver": resolver},
        {"m": {"python": "3.11", "pypi": ["secretpkg==3"]}})
    r = run_cli(ws, "resolve"); show(r)
    print(files_holding(ws, SECRET))

@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_probe_exclude_newer(resolver, py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"timed": [Dist("1.0", upload_time="2024-01-01T00:00:00Z"), Dist("2.0", upload_time="2024-06-01T00:00:00Z")]}, json_api=True)
    ws = write_manifest(tmp_path/"ws", ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": resolver, "exclude-newer": "2024-03-01T00:00:00Z"}),
        {"m": {"python": "3.11", "pypi": ["timed"]}})
    r = run_cli(ws, "resolve"); show(r)
    if r.returncode == 0: print(pypi_pkgs(ws, "m", "linux-64")["timed"]["version"])

def test_probe_foreign_sdist_msg(sources, py_channel, run_cli):
    idx, ws = sources["idx"], sources["ws"]
    write_manifest(ws, ws_settings(py_channel, idx, ["osx-arm64"]), {"sdist": {"python": "3.11", "pypi": ["srconly"]}})
    show(run_cli(ws, "resolve"))
