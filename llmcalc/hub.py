"""Hugging Face Hub ids (``org/name`` or ``org/name@revision``) -> the path of that repo's ``config.json``.

Everything about the cache layout, revisions, tokens and endpoints is ``huggingface_hub``'s: this module only
decides the order (the local cache first, a download of ``config.json`` alone only when it is not cached and the
machine is not offline) and turns the library's exceptions into one-line InputErrors. ``huggingface_hub`` is
imported only here, and only when an id is given, so a preset name never pays for it.

A cached id is found with ``huggingface_hub.constants`` alone (the cache root, the ``models--org--name`` folder
separator, the default revision): every other module of the library imports its HTTP client (httpx2 in 2.4), and
``huggingface_hub.file_download`` costs ~100 ms of imports, as much as the rest of a run (issue 11: a cached id
adds at most 100 ms). The lookup is the one ``try_to_load_from_cache`` does (``refs/<revision>`` names a commit,
else the revision is one; ``snapshots/<commit>/config.json``), and it only ever returns a file the library wrote:
anything else (not cached, a ``.no_exist`` record, an invalid id) goes to ``try_to_load_from_cache`` itself and,
when online, ``hf_hub_download``. tests/test_hub.py checks the two agree on a cache the library filled.

The environment is read when an id is resolved (not when ``huggingface_hub`` was first imported):
``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``), ``HF_TOKEN``, ``HF_ENDPOINT``, and the cache location
(``HF_HUB_CACHE``, else ``HF_HOME/hub``, else the library's default, ``~/.cache/huggingface/hub``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from llmcalc.errors import InputError

# Hub repo names: letters, digits, '-', '_', '.'; one namespace; an optional @revision (branch, tag or sha).
_REPO_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})(?:@(?P<rev>[\w./-]{1,200}))?$")
_TRUE = ("1", "on", "yes", "true")


def parse_repo_id(ref: str) -> tuple[str, str | None] | None:
    """``("org/name", revision or None)`` when ``ref`` has the shape of a Hub id, else None."""
    m = _REPO_ID.match(ref)
    if not m or ref.endswith((".json", ".yaml", ".yml")) or ".." in ref:
        return None
    return m["repo"], m["rev"]


def offline() -> bool:
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.strip().lower() in _TRUE


def _cache_dir() -> str | None:
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None  # the library's default


def _howto(repo: str, rev: str | None) -> str:
    revision = f" --revision {rev}" if rev else ""
    return f"`huggingface-cli download {repo} config.json{revision}`, or pass the path of a config.json"


def cached_snapshot(repo: str, revision: str | None, filename: str = "config.json") -> str | None:
    """The path of ``filename`` in the Hugging Face cache's snapshot of ``repo`` at ``revision``, or None when that
    snapshot holds no such file (then ask ``try_to_load_from_cache``: it also knows ``.no_exist`` and invalid ids).

    ``<cache>/models--org--name/refs/<revision>`` holds the commit a branch or tag points to (a commit hash has no
    ref), and ``snapshots/<commit>/<filename>`` the file (huggingface_hub's cache layout, as its
    ``try_to_load_from_cache`` reads it). Imports ``huggingface_hub.constants`` only; raises ImportError without
    the package."""
    from huggingface_hub import constants
    if "--" in repo or repo.endswith(".git"):       # ids the library refuses: let it say why
        return None
    folder = os.path.join(_cache_dir() or constants.HF_HUB_CACHE,
                          constants.REPO_ID_SEPARATOR.join([f"{constants.REPO_TYPE_MODEL}s", *repo.split("/")]))
    commit = revision or constants.DEFAULT_REVISION
    try:
        with open(os.path.join(folder, "refs", commit)) as ref:
            commit = ref.read()
    except OSError:                                  # no such ref: the revision is a commit hash (or not cached)
        pass
    snapshots = os.path.join(folder, "snapshots")
    try:
        if commit not in os.listdir(snapshots):      # a snapshot's own name only (never "/elsewhere")
            return None
    except OSError:                                  # nothing of this repo is cached
        return None
    path = os.path.join(snapshots, commit, filename)
    return path if os.path.isfile(path) else None


def config_json(repo: str, revision: str | None, suggestion: str | Callable[[], str] = "") -> Path:
    """The cached (or freshly downloaded) ``config.json`` of ``repo`` at ``revision`` (default: main).

    ``suggestion`` (e.g. "did you mean llama-3.1-8b?", or a function making it once the id is not found in the
    cache) is appended to the not-found errors."""
    try:
        cached = cached_snapshot(repo, revision)
        if cached is not None:
            return Path(cached)
        import huggingface_hub as hub
        from huggingface_hub import errors
    except ImportError:
        raise InputError(f"{repo}: reading a Hugging Face repo id needs the huggingface_hub package "
                         "(pip install huggingface_hub), or pass the path of a config.json") from None

    ref = f"{repo}@{revision}" if revision else repo
    suggestion = suggestion() if callable(suggestion) else suggestion
    tail = f"; {suggestion}" if suggestion else ""
    cache_dir = _cache_dir()
    try:
        cached = hub.try_to_load_from_cache(repo, "config.json", cache_dir=cache_dir, revision=revision)
    except (errors.HFValidationError, ValueError) as exc:
        raise InputError(f"{ref!r} is not a valid Hugging Face repo id: {exc}") from None
    if isinstance(cached, str):
        return Path(cached)
    if cached is hub._CACHED_NO_EXIST:
        raise InputError(f"{ref}: the Hugging Face cache records that this repo has no config.json; "
                         "pass the path of the model's config.json")
    if offline():
        what = f"revision {revision!r} of {repo}" if revision else repo
        raise InputError(f"{ref!r} is neither a model preset nor in the Hugging Face cache ({what} has no cached "
                         f"config.json) and HF_HUB_OFFLINE is set; get it with {_howto(repo, revision)}{tail}")
    import logging
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.CRITICAL)       # its retry warnings would break the one-line error contract
    endpoint, token = os.environ.get("HF_ENDPOINT") or None, os.environ.get("HF_TOKEN") or None
    try:
        # one HEAD without retries first: unreachable Hub -> a prompt error instead of ~20 s of download backoff
        try:
            hub.get_hf_file_metadata(hub.hf_hub_url(repo, "config.json", revision=revision, endpoint=endpoint),
                                     token=token, timeout=5, endpoint=endpoint)
        except errors.HfHubHTTPError:
            raise                                # the Hub answered: handled below
        except Exception as exc:                 # the HTTP client's own connect/timeout errors
            raise _unreachable(ref, repo, revision, tail, exc) from None
        path = hub.hf_hub_download(repo, "config.json", revision=revision, cache_dir=cache_dir,
                                   endpoint=endpoint, token=token, etag_timeout=5)
    except errors.GatedRepoError:
        raise InputError(f"{ref}: the repo is gated; accept its licence on the Hub and set HF_TOKEN to a token "
                         f"that has access (or pass the path of a config.json)") from None
    except errors.RevisionNotFoundError:
        raise InputError(f"{ref}: revision {revision!r} does not exist in {repo}") from None
    except errors.RepositoryNotFoundError:
        raise InputError(f"{ref!r} is neither a model preset nor a Hugging Face repo this token can see "
                         f"(a private repo needs HF_TOKEN){tail}") from None
    except errors.EntryNotFoundError as exc:
        if isinstance(exc, errors.LocalEntryNotFoundError):   # could not connect, nothing cached
            raise _unreachable(ref, repo, revision, tail, exc) from None
        raise InputError(f"{ref}: the repo has no config.json; pass the path of the model's config.json") from None
    except (errors.HfHubHTTPError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{ref}: could not download config.json ({first}); get it with "
                         f"{_howto(repo, revision)}") from None
    finally:
        hub_log.setLevel(level)
    return Path(path)


def _unreachable(ref: str, repo: str, revision: str | None, tail: str, exc: BaseException) -> InputError:
    return InputError(f"{ref!r} is neither a model preset nor in the Hugging Face cache, and the Hub could not be "
                      f"reached ({type(exc).__name__}); get it with {_howto(repo, revision)}{tail}")
