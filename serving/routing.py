"""Which versions a model serves and which loaded servable answers a request, as pure functions of its
:class:`~serving.servables.ModelState` and serving config (no I/O, no registry; tests/serving/test_routing.py).

A request names a label (-> its version), a version, or neither: then the weighted traffic split picks a
(version, variant) among those loaded, else the latest version's default variant answers; the shadow candidate
is the config's ``shadow`` target when it is loaded and is not the primary. What the policy loads: the
version policy picks versions, each with its default variant and the variants the split and the shadow name.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from serving.errors import BadRequest, NotFound, Unavailable
from serving.servables import ModelState, Servable
from serving.serving_config import ModelConfig


def parse_version(text: str) -> int:
    """A version path segment: ASCII digits only (not ``²`` or ``١``), at most 18 of them, at least 1."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise BadRequest(f"version: '{text}' is not a version number (1, 2, ...)")
    return int(text)


# ------------------------------------------------------------------ what the policy loads
def default_variant(cfg: ModelConfig, forced: str | None, runtime_default: str) -> str:
    """``--variant``, else the model's ``variant`` key, else the runtime's default variant."""
    return forced or cfg.variant or runtime_default


def named_variants(cfg: ModelConfig, forced: str | None) -> set[str]:
    """Variants named on purpose (``--variant``, the config): served even when export validation rejected them."""
    return {v for v in (forced, cfg.variant, *(t.variant for t in cfg.targets())) if v}


def variants_to_load(cfg: ModelConfig, default: str, version: int, latest: bool) -> list[str]:
    """The variants a version loads: the default, and those the split or the shadow route to it (a target
    without a version routes to the latest)."""
    names = [default]
    for t in cfg.targets():
        if t.variant and (t.version == version or (t.version is None and latest)) and t.variant not in names:
            names.append(t.variant)
    return names


def wanted_versions(cfg: ModelConfig, candidates: list[int]) -> list[int]:
    """The versions the version policy serves among ``candidates`` (ascending): all, the ones listed, or the
    newest ``num_versions``."""
    if cfg.version_policy == "all":
        return candidates
    if cfg.version_policy == "specific":
        return [v for v in candidates if v in cfg.versions]
    return candidates[-cfg.num_versions :]


# ------------------------------------------------------------------ which servable answers
def servable(st: ModelState, version: int, variant: str | None, default: str) -> Servable:
    """A loaded version's variant (``None``: the default), else a 404 that says what is loaded."""
    vs = st.versions.get(version)
    if vs is None:
        loaded = ", ".join(map(str, sorted(st.versions))) or "none"
        if version in st.failed:
            raise NotFound(
                f"model '{st.name}' version {version} is not available: it failed to load "
                f"({st.failed[version][1]}); loaded versions: {loaded}"
            )
        raise NotFound(f"model '{st.name}' has no version {version} loaded (loaded versions: {loaded})")
    vname = variant or default
    s = vs.get(vname)
    if s is None:
        raise NotFound(f"model '{st.name}' version {version} has no loaded variant '{vname}' (loaded: {', '.join(vs)})")
    return s


def resolve(
    st: ModelState,
    default: str,
    version: str | int | None = None,
    label: str | None = None,
    choose: Callable = random.choices,
) -> tuple[Servable, Servable | None]:
    """The servable that answers, and the shadow candidate (or None). ``choose``: ``random.choices``' signature,
    which draws the traffic split."""
    if version is not None or label is not None:  # the common request names neither: no call for it
        pinned = pinned_version(st, version, label)
        if pinned is not None:
            return servable(st, pinned, None, default), None
    latest = latest_loaded(st)
    cfg = st.config
    primary = (cfg.traffic and split(st, latest, default, choose)) or servable(st, latest, None, default)
    return primary, (shadow_of(st, latest, primary, default) if cfg.shadow is not None else None)


def pinned_version(st: ModelState, version: str | int | None, label: str | None) -> int | None:
    """The version a request names, by label (first) or number; None when it names neither."""
    if label is not None:
        if label not in st.config.labels:
            raise NotFound(
                f"model '{st.name}' has no label '{label}' (labels: {', '.join(st.config.labels) or 'none'})"
            )
        return st.config.labels[label]
    return parse_version(version) if isinstance(version, str) else version


def latest_loaded(st: ModelState) -> int:
    """The newest loaded version, else a 503: still loading, or every version failed (and why)."""
    if not st.versions:
        if st.loading:
            raise Unavailable(f"model '{st.name}' is loading; retry shortly", headers={"Retry-After": "1"})
        raise Unavailable(
            f"model '{st.name}' has no loaded version: "
            + "; ".join(f"version {v}: {m}" for v, (_, m) in sorted(st.failed.items())),
            headers={"Retry-After": "5"},
        )
    return st.latest()


def split(st: ModelState, latest: int, default: str, choose: Callable = random.choices) -> Servable | None:
    """The traffic split's pick, by weight, among its targets that are loaded (a target without a version is
    the latest); None when the config has no split or none of its targets is loaded."""
    usable = [
        t
        for t in st.config.traffic
        if t.weight > 0 and (t.variant or default) in st.versions.get(t.version or latest, ())
    ]
    if not usable:
        return None
    t = choose(usable, weights=[t.weight for t in usable])[0]
    return servable(st, t.version or latest, t.variant, default)


def shadow_of(st: ModelState, latest: int, primary: Servable, default: str) -> Servable | None:
    """The config's shadow target when it is loaded and is not the primary itself."""
    sh = st.config.shadow
    if sh is None:
        return None
    cand = st.versions.get(sh.version or latest, {}).get(sh.variant or default)
    return cand if cand is not primary else None
