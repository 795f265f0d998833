"""The stored login of ``fma``: the service's URL and the developer's token, in a file only its owner may read."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "credentials.json"


class NotLoggedIn(Exception):
    """No stored login (or one that cannot be read)."""


@dataclass(frozen=True)
class Credentials:
    url: str
    username: str
    token: str


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/fma``, else ``~/.config/fma``.

    The XDG Base Directory rule in two lines (an empty or relative ``XDG_CONFIG_HOME`` is ignored, as the
    specification says) rather than a dependency: ``fma`` keeps one file there on every platform.
    """
    base = os.environ.get("XDG_CONFIG_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".config") / "fma"


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def save(credentials: Credentials) -> Path:
    """Write the login with mode 0600 (in a folder made 0700), replacing any earlier one whole; its path.

    The file is written under a temporary name created 0600 and renamed over the old one, so the token is
    never readable by others, not even for a moment, and an interrupted write leaves the old login intact.
    """
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".json")
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(asdict(credentials), file, indent=2)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load() -> Credentials:
    """The stored login.

    Raises
    ------
    NotLoggedIn
        when there is none, or the file is not one ``fma login`` wrote.
    """
    path = credentials_path()
    try:
        stored = json.loads(path.read_text())
        return Credentials(url=stored["url"], username=stored["username"], token=stored["token"])
    except FileNotFoundError:
        raise NotLoggedIn("Not logged in: run `fma login` first.") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NotLoggedIn(f"Cannot read the stored login {path} ({error}): run `fma login` again.") from None


def remove() -> Path | None:
    """Forget the stored login; its path, or None when there was none."""
    path = credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path
