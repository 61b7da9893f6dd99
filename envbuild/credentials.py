"""Credentials in channel, index and VCS URLs: split out, percent-decoded, and handed to rattler (in memory), uv, pip and git (through their environment), never through argv."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from envbuild.channels import redact_url


@dataclass(frozen=True, slots=True)
class Login:
    """A decoded ``user:password`` (``password`` is "" for a URL with a user name only)."""

    username: str
    password: str = ""

    def header(self) -> str:
        """The value of an HTTP basic ``Authorization`` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def userinfo(self) -> str:
        """The login as a URL's userinfo, percent-encoded (``p@ss`` -> ``p%40ss``)."""
        user = quote(self.username, safe="")
        return f"{user}:{quote(self.password, safe='')}" if self.password else user


def split_login(url: str) -> tuple[str, Login | None]:
    """``url`` without its ``user:password@`` part, and that login (``${VAR}`` references
    expanded from the environment) percent-decoded: ``p%40ss`` means ``p@ss``; None when the
    URL has none. The last ``@`` of the authority ends the userinfo, so a raw ``@`` in a
    password works too."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    userinfo = os.path.expandvars(userinfo)
    user, colon, password = userinfo.partition(":")
    login = Login(unquote(user), unquote(password) if colon else "")
    return urlunsplit(parts._replace(netloc=hostport)), login


def with_login(url: str, login: Login | None) -> str:
    """``url`` with ``login`` as its (percent-encoded) userinfo: for a tool's environment."""
    if login is None:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{login.userinfo()}@{parts.netloc}"))


def token_mirrors(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{public channel URL/: URL/ with its token path}`` for the channels of ``pairs``
    (public URL, real URL) that carry a ``/t/<token>/``: what rattler's mirror middleware
    rewrites requests with, in memory, so that the URL rattler caches repodata under (and
    writes into its cache) is the public one. ``${VAR}`` references are expanded; a
    ``user:password@`` part is dropped (it travels as a header). Raises ValueError naming
    a channel given with two different tokens."""
    out: dict[str, str] = {}
    for public, real in pairs:
        secret, _ = split_login(os.path.expandvars(real))
        if redact_url(secret) == secret:  # no token path
            continue
        key, value = public.rstrip("/") + "/", secret.rstrip("/") + "/"
        if out.get(key, value) != value:
            raise ValueError(public)
        out[key] = value
    return out


# --------------------------------------------------------------------------- uv and pip


def uv_index_options(
    index_url: str, extra_index_urls: Sequence[str], find_links: Sequence[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) giving uv its indexes: URLs without credentials in argv (an index
    with credentials is named there, ``--index envbuild1=URL``) and the decoded credentials in
    ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD``. Find-links with credentials go, all of them,
    through ``UV_FIND_LINKS`` (uv reads no names for them)."""
    args: list[str] = []
    env: dict[str, str] = {}
    for i, (option, url) in enumerate(
        [("--default-index", index_url), *(("--index", u) for u in extra_index_urls)]
    ):
        public, login = split_login(url)
        if login is None:
            args += [option, public]
            continue
        name = f"envbuild{i}"
        args += [option, f"{name}={public}"]
        env[f"UV_INDEX_{name.upper()}_USERNAME"] = login.username
        env[f"UV_INDEX_{name.upper()}_PASSWORD"] = login.password
    links = [split_login(link) for link in find_links]
    if any(login for _, login in links):
        env["UV_FIND_LINKS"] = ",".join(with_login(u, login) for u, login in links)
    else:
        args += [arg for u, _ in links for arg in ("--find-links", u)]
    return args, env


def pip_index_options(
    index_url: str, extra_index_urls: Sequence[str], find_links: Sequence[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) giving pip its indexes: a URL with credentials goes through
    ``PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` / ``PIP_FIND_LINKS`` (pip adds the
    environment's extra indexes and find-links to the command line's), the others through
    argv. pip must then run without ``--isolated``, which would ignore its environment."""
    args: list[str] = []
    env: dict[str, str] = {}
    public, login = split_login(index_url)
    if login is None:
        args += ["--index-url", public]
    else:
        env["PIP_INDEX_URL"] = with_login(public, login)
    for option, variable, urls in (
        ("--extra-index-url", "PIP_EXTRA_INDEX_URL", extra_index_urls),
        ("--find-links", "PIP_FIND_LINKS", find_links),
    ):
        secret = []
        for url in urls:
            public, login = split_login(url)
            if login is None:
                args += [option, public]
            else:
                secret.append(with_login(public, login))
        if secret:
            env[variable] = " ".join(secret)
    return args, env


# --------------------------------------------------------------------------- git

# A credential helper that answers git's "get" from the environment (git runs it with sh):
# its argv names the variables only.
_GIT_HELPER = (
    "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' "
    '"$ENVBUILD_GIT_USERNAME_{i}" "$ENVBUILD_GIT_PASSWORD_{i}"; }; f'
)


def _vcs_split(url: str) -> tuple[str, str]:
    """(``git``, the URL git gets) of ``git+https://...``; ("", url) of a plain URL."""
    vcs, plus, rest = url.partition("+")
    return (vcs, rest) if plus and "://" in rest and "/" not in vcs else ("", url)


def git_login_free(url: str) -> tuple[str, Login | None]:
    """A VCS URL (``git+https://user:token@host/repo.git@v1``) without its http(s) login,
    and that login; an ssh URL keeps its user name (``git+ssh://git@host/...``)."""
    vcs, rest = _vcs_split(url)
    if urlsplit(rest).scheme not in ("http", "https"):
        return url, None
    public, login = split_login(rest)
    return (f"{vcs}+{public}" if vcs else public), login


def git_credential_env(urls: Iterable[str]) -> dict[str, str]:
    """Environment that gives git the http(s) logins of ``urls`` (VCS URLs or any URLs)
    through a credential helper per origin, configured by ``GIT_CONFIG_COUNT`` /
    ``GIT_CONFIG_KEY_<n>`` / ``GIT_CONFIG_VALUE_<n>`` (git >= 2.31): git (and uv, which runs
    git) never gets a login in its argv. For those origins the helper list is reset first,
    so that no helper of the user's (``store``, a keychain) is asked to save the login.
    ``GIT_TERMINAL_PROMPT=0``: no prompt, ever."""
    logins: dict[str, Login] = {}
    for url in urls:
        public, login = git_login_free(url)
        if login is not None:
            parts = urlsplit(_vcs_split(public)[1])
            logins.setdefault(f"{parts.scheme}://{parts.netloc}", login)
    env = {"GIT_TERMINAL_PROMPT": "0"}
    for i, (origin, login) in enumerate(sorted(logins.items())):
        key = f"credential.{origin}.helper"
        env[f"GIT_CONFIG_KEY_{2 * i}"], env[f"GIT_CONFIG_VALUE_{2 * i}"] = key, ""
        env[f"GIT_CONFIG_KEY_{2 * i + 1}"] = key
        env[f"GIT_CONFIG_VALUE_{2 * i + 1}"] = _GIT_HELPER.replace("{i}", str(i))
        env[f"ENVBUILD_GIT_USERNAME_{i}"] = login.username
        env[f"ENVBUILD_GIT_PASSWORD_{i}"] = login.password
    if logins:
        env["GIT_CONFIG_COUNT"] = str(2 * len(logins))
    return env
