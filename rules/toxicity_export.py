"""Making the Detoxify ONNX fast path: the exports, their one parity check, offline bundles.

A build tool, run by ``governance-bot models fetch`` (and ``python -m rules.toxicity_export
prepare``), never at run time: it needs torch and the Detoxify model itself, and takes a minute.
The run-time side (rules/toxicity.py) only reads what this writes: each export and, beside it,
a record of the checkpoint it was made from (SHA-256), how to tokenise for it, and the largest
difference from torch on the pack's check texts for each ONNX Runtime version it was checked
with (rules/models.py).

Three variants, fastest first (docs/classifiers-toxicity.md):

* ``int8``: the first-token export with dynamic int8 quantisation;
* ``first-token``: traced with eager attention, the last layer computing only the first token
  (what every Detoxify head reads), fp32 and exact;
* ``plain``: the dynamo exporter's graph as it comes (made only when first-token fails).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rules.models import FETCH_STEP, ExportRecord, FileIdentity, file_identity, runtime_version
from rules.toxicity import (
    ONNX_VARIANTS,
    VARIANT_NAMES,
    DetoxifyBackend,
    OnnxBackend,
    OnnxVariant,
    ParityResult,
    ToxicityModelUnavailable,
    ToxicityPack,
    detoxify_files,
    load_detoxify,
    parity_check,
    release_memory,
    variant_path,
)

if TYPE_CHECKING:
    from governance_bot.config import ToxicitySettings

__all__ = [
    "ExportReport",
    "export_onnx",
    "fetch_detoxify",
    "prepare_exports",
    "prepare_offline_bundle",
    "quantize_onnx",
]

log = logging.getLogger(__name__)


def export_onnx(detox: Any, path: Path, identity: FileIdentity | None = None,
                variant: OnnxVariant = "plain", source: Path | None = None,
                model_type: str = "original") -> Path:
    """Export the Detoxify model to ONNX at ``path`` (dynamic batch and sequence length).

    ``variant="int8"`` quantises ``source`` (a first-token export) instead of exporting. With
    ``identity`` (the checkpoint's), the record beside it says what it was made from and how to
    tokenise for it; :func:`check_export` adds the parity check.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if variant == "int8":
        if source is None:
            raise ValueError("the int8 variant is made from a first-token export: pass source=")
        quantize_onnx(source, path)
    elif variant == "first-token":
        _export_first_token(detox, path)
    else:
        _export_dynamo(detox, path)
    if identity is not None:
        import torch

        ExportRecord.new(
            path, identity, model=model_type, export=variant,
            tokenizer=type(detox.tokenizer).__name__,
            max_length=int(detox.tokenizer.model_max_length),
            class_names=list(detox.class_names),
            exported={"torch": torch.__version__,
                      "made": datetime.now(UTC).isoformat(timespec="seconds")},
        ).write()
    return path


def quantize_onnx(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation (int8 weights, uint8 activations scaled per call) of ``source``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                     # tensors whose type the quantiser cannot infer are fp32
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return target


def _export_sample(detox: Any) -> tuple[Any, list[str]]:
    tokenizer = detox.tokenizer
    sample = tokenizer(["an example sentence for export", "a second, somewhat longer example "
                        "sentence so the two lengths differ"], return_tensors="pt", padding=True,
                       truncation=True)
    return sample, [n for n in tokenizer.model_input_names if n in sample]


def _export_dynamo(detox: Any, path: Path) -> None:
    import torch

    model = detox.model.eval()
    sample, names = _export_sample(detox)
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("sequence", min=1, max=int(detox.tokenizer.model_max_length))
    # the exporter warns about its own internals (axis renaming, deprecated helpers): not ours
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (), kwargs={n: sample[n] for n in names}, input_names=names,
            output_names=["logits"], dynamic_shapes={n: {0: batch, 1: seq} for n in names},
            dynamo=True, verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo export always returns a program
        raise RuntimeError("torch.onnx.export returned nothing")
    program.save(str(path))


def _first_token_attention(attention: Any, query_states: Any, hidden: Any,
                           attention_mask: Any) -> Any:
    """Self-attention of the first token over every token, as transformers' eager attention."""
    import torch

    batch, length, _ = hidden.shape
    heads, size = attention.num_attention_heads, attention.attention_head_size
    query = attention.query(query_states).view(batch, 1, heads, size).transpose(1, 2)
    key = attention.key(hidden).view(batch, length, heads, size).transpose(1, 2)
    value = attention.value(hidden).view(batch, length, heads, size).transpose(1, 2)
    weights = torch.matmul(query, key.transpose(2, 3)) * attention.scaling
    if attention_mask is not None:
        mask = attention_mask[:, :, :1, :]
        if mask.dtype == torch.bool:  # sdpa's form: True where a token may be attended to
            weights = weights.masked_fill(~mask, torch.finfo(weights.dtype).min)
        else:  # eager's form (what the export traces): added to the scores
            weights = weights + mask
    weights = torch.nn.functional.softmax(weights, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).reshape(batch, 1, heads * size)


def _first_token_layer(layer: Any) -> Any:
    """``layer`` (the model's last encoder layer) computing only the first token's output.

    Every Detoxify head (the BERT and ALBERT poolers, the RoBERTa/XLM-R classification head)
    reads only the first token of the last layer's output. That token's output needs the keys
    and values of every token but the query, the attention output, the feed-forward and the
    LayerNorms of the first token only, so this module computes just those, with the layer's own
    weights, and returns a sequence of length 1: the same numbers as the full layer for that
    token, for about a sixth of the layer's work.
    """
    import torch

    class FirstTokenLayer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, hidden: Any, attention_mask: Any = None, *args: Any,
                    **kwargs: Any) -> Any:
            first = hidden[:, :1]
            if hasattr(layer, "full_layer_layer_norm"):  # ALBERT
                attention = layer.attention
                context = _first_token_attention(attention, first, hidden, attention_mask)
                attended = attention.LayerNorm(first + attention.dense(context))
                return layer.full_layer_layer_norm(layer.ff_chunk(attended) + attended)
            # BERT, RoBERTa, XLM-R
            context = _first_token_attention(layer.attention.self, first, hidden, attention_mask)
            attended = layer.attention.output(context, first)
            return layer.feed_forward_chunk(attended)

    return FirstTokenLayer()


@contextlib.contextmanager
def _last_layer_on_first_token(model: Any) -> Any:
    """Within the block, ``model``'s last encoder layer computes the first token only."""
    base = getattr(model, model.base_model_prefix)
    encoder = base.encoder
    if hasattr(encoder, "layer"):  # BERT, RoBERTa, XLM-R
        last = encoder.layer[-1]
        encoder.layer[-1] = _first_token_layer(last)
        try:
            yield
        finally:
            encoder.layer[-1] = last
        return
    # ALBERT: groups of shared layers, each group called for several consecutive layers; the last
    # group's last layer runs on the first token in its last call only
    import torch

    config = model.config
    groups = encoder.albert_layer_groups
    group = groups[-1]
    calls = int(config.num_hidden_layers // config.num_hidden_groups)

    class LastCall(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.group, self.count = group, 0

        def forward(self, hidden: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
            self.count += 1
            if self.count < calls:
                return self.group(hidden, attention_mask, **kwargs)
            self.count = 0
            layers = list(self.group.albert_layers)
            for albert_layer in layers[:-1]:
                hidden = albert_layer(hidden, attention_mask, **kwargs)
            return _first_token_layer(layers[-1])(hidden, attention_mask)

    if config.num_hidden_layers % config.num_hidden_groups:
        raise ValueError("ALBERT layers not evenly split into groups")
    groups[-1] = LastCall()
    try:
        yield
    finally:
        groups[-1] = group


def _export_first_token(detox: Any, path: Path) -> None:
    """Traced export with eager attention and the last layer on the first token only.

    The model is traced (``torch.onnx.export(..., dynamo=False)``) with transformers' eager
    attention, inside ``_last_layer_on_first_token``: the last encoder layer computes only the
    first token's output, which is all the classification head reads (the keys and values still
    come from every token), so about 7 % of a 12-layer model's work is skipped with the same
    result. onnxruntime's own graph optimisations apply when the session loads it. Inputs are
    passed by name: ``forward``'s positional order is not the tokenizer's. The torch model's
    attention implementation and layers are restored afterwards, so the torch reference in the
    parity check is untouched.
    """
    import torch

    model = detox.model.eval()
    sample, names = _export_sample(detox)

    class ByName(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    before = getattr(model.config, "_attn_implementation", None)
    try:
        model.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings(), _last_layer_on_first_token(model):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                ByName().eval(), tuple(sample[n] for n in names), str(path), input_names=names,
                output_names=["logits"], opset_version=17, dynamo=False,
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                              "logits": {0: "batch"}},
            )
    finally:
        if before is not None:
            model.set_attn_implementation(before)
        release_memory()  # the tracer's copies of the weights


# ------------------------------------------------------------------ checking the exports


@dataclass
class ExportReport:
    """What :func:`prepare_exports` did: per variant, a line; the fastest that passed."""

    lines: list[str] = field(default_factory=list)
    chosen: str | None = None
    parity: ParityResult | None = None

    @property
    def ok(self) -> bool:
        return self.chosen is not None


def _ensure_export(detox: Any, identity: FileIdentity, variant: OnnxVariant, base_path: Path,
                   model: str, force: bool, lines: list[str]) -> Path | None:
    """The variant's export, made (again) unless one made from this checkpoint is there."""
    path = variant_path(base_path, variant)
    record = ExportRecord.read(path)
    if not force and record is not None and record.made_from(identity) and \
            record.data.get("export") == variant:
        return path
    source = None
    if variant == "int8":
        source = _ensure_export(detox, identity, "first-token", base_path, model, force, lines)
        if source is None:
            return None
    try:
        log.info("toxicity: exporting %s to ONNX (%s) at %s (takes a minute)", model, variant,
                 path)
        export_onnx(detox, path, identity, variant, source, model_type=model)
    except Exception as exc:
        lines.append(f"{variant}: the export to {path} failed ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''})")
        return None
    return path


def check_export(path: Path, detox: Any, torch_backend: DetoxifyBackend, pack: ToxicityPack,
                 settings: ToxicitySettings) -> ParityResult | None:
    """Run the export and torch on the pack's check texts once, and record the result beside
    the export for this ONNX Runtime version. None when onnxruntime cannot load it."""
    record = ExportRecord.read(path)
    runtime = runtime_version()
    if record is None or runtime is None:
        return None
    try:
        candidate = OnnxBackend.from_file(path, detox.tokenizer, torch_backend.class_names,
                                          settings.batch_size, settings.model, settings.threads,
                                          variant=VARIANT_NAMES[record.data.get("export",
                                                                                "plain")],
                                          parallel_batches=settings.parallel_batches)
    except Exception as exc:
        log.warning("toxicity: %s cannot be loaded by onnxruntime (%s)", path,
                    type(exc).__name__)
        return None
    import torch

    result = parity_check(torch_backend, candidate, pack.onnx.check_texts,
                          pack.onnx.parity_tolerance)
    record.add_parity(runtime, result.max_abs_diff, result.tolerance, result.texts,
                      f"Detoxify on torch {torch.__version__}")
    record.write()
    del candidate
    release_memory()
    return result


def prepare_exports(settings: ToxicitySettings, pack: ToxicityPack, base_dir: Path | None = None,
                    force: bool = False) -> ExportReport:
    """Export the configured (or fetched) checkpoint's ONNX variants and check each against
    torch once, recording the results beside them: ``int8`` and ``first-token`` always, and
    ``plain`` when ``first-token`` fails. The run time then uses the fastest that passed."""
    report = ExportReport()
    if runtime_version() is None:
        report.lines.append("onnxruntime is not installed (pip install 'governance-bot[ml]'): "
                            "Detoxify will run on torch")
        return report
    files = detoxify_files(settings, base_dir or Path.cwd())
    problem = files.problem()
    if problem:
        raise ToxicityModelUnavailable(problem)
    detox = load_detoxify(settings.model, files.checkpoint, files.hf_dir, settings.device)
    torch_backend = DetoxifyBackend(detox, settings.batch_size, settings.model)
    identity = file_identity(files.checkpoint)
    passed: dict[str, ParityResult] = {}
    for variant in ONNX_VARIANTS:
        if variant == "plain" and "first-token" in passed:
            continue
        path = _ensure_export(detox, identity, variant, files.onnx_base, settings.model, force,
                              report.lines)
        if path is None:
            continue
        result = check_export(path, detox, torch_backend, pack, settings)
        if result is None:
            report.lines.append(f"{variant}: {path} cannot be loaded by onnxruntime")
            continue
        verdict = "passes" if result.ok else "FAILS (not used)"
        report.lines.append(f"{variant}: {path}: {result.describe()}: {verdict}")
        if result.ok:
            passed[variant] = result
    for variant in ONNX_VARIANTS:
        if variant in passed:
            report.chosen, report.parity = variant, passed[variant]
            break
    return report


# ------------------------------------------------------------------------ fetching


def _copy_bundle(source: Path, target: Path, model: str) -> bool:
    """Copy a prepared Detoxify folder into the store: either a bundle (``detoxify-<model>.ckpt``
    and ``detoxify-<model>-hf/``, as ``prepare`` writes it) or a model store (``detoxify/<model>/``
    inside it). Modification times are kept, so the records' identities stay valid."""
    for folder in (source / "detoxify" / model, source):
        ckpt = folder / f"detoxify-{model}.ckpt"
        hf = folder / f"detoxify-{model}-hf"
        if ckpt.is_file() and hf.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            for item in folder.iterdir():
                if not item.name.startswith(f"detoxify-{model}"):
                    continue
                dest = target / item.name
                if item.is_dir():
                    shutil.copytree(item, dest, dirs_exist_ok=True)
                else:
                    shutil.copy2(item, dest)
            return True
    return False


def fetch_detoxify(settings: ToxicitySettings, pack: ToxicityPack, base_dir: Path | None = None,
                   source: Path | None = None, force: bool = False,
                   say: Callable[[str], None] = print, download: bool = True) -> bool:
    """Put the configured Detoxify model into the model store (downloaded where there is
    internet, or copied from ``source``), then make and check its ONNX exports once. With a
    ``checkpoint`` in the config, that file is used as it is. Returns whether it is usable."""
    base = base_dir or Path.cwd()
    files = detoxify_files(settings, base)
    if not settings.checkpoint:
        if source is not None:
            if not _copy_bundle(source, files.folder, settings.model):
                say(f"{source} holds no detoxify-{settings.model}.ckpt with its "
                    f"detoxify-{settings.model}-hf folder (nor detoxify/{settings.model}/): "
                    "prepare one with `governance-bot models fetch` where there is internet, "
                    f"then copy {files.folder.parent.parent} (or that folder)")
                return False
            say(f"Detoxify {settings.model}: copied from {source} to {files.folder}")
        elif files.problem() is not None and not download:
            say(f"Detoxify {settings.model}: not on this machine; not downloaded (--offline): "
                f"run `{FETCH_STEP}` where there is internet")
            return False
        elif files.problem() is not None or force:
            say(f"Detoxify {settings.model}: downloading the checkpoint (GitHub) and its "
                f"tokenizer (Hugging Face) into {files.folder}")
            try:
                prepare_offline_bundle(files.folder, settings.model)
            except Exception as exc:
                say(f"Detoxify {settings.model} could not be downloaded ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}). Run `{FETCH_STEP}` on a "
                    f"machine with internet, copy its model folder here and run `{FETCH_STEP} "
                    "--from DIR`")
                return False
    problem = detoxify_files(settings, base).problem()
    if problem:
        say(f"Detoxify {settings.model}: {problem}")
        return False
    if settings.backend == "torch":
        say(f"Detoxify {settings.model}: ready (backend = torch: no ONNX export)")
        return True
    report = prepare_exports(settings, pack, base, force=force)
    for line in report.lines:
        say(f"Detoxify {settings.model} {line}")
    if report.ok:
        say(f"Detoxify {settings.model}: ready; the {report.chosen} export is used")
    else:
        say(f"Detoxify {settings.model}: ready on torch (no ONNX export passed its check)")
    return True


def _allow_network() -> None:
    """This is the step that downloads: the run-time default (offline) does not apply."""
    os.environ["HF_HUB_OFFLINE"] = "0"
    os.environ["TRANSFORMERS_OFFLINE"] = "0"


def prepare_offline_bundle(out_dir: Path, model_type: str = "original",
                           checkpoint: Path | None = None,
                           huggingface_config_path: Path | None = None,
                           export: bool = False) -> dict[str, Path]:
    """Write what an air-gapped install needs into ``out_dir``.

    Run on a machine with internet (without ``checkpoint``: Detoxify's release weights and the
    transformer's config/tokenizer are downloaded), or offline to convert an existing Detoxify
    checkpoint into the tensors-and-config-only form ``load_detoxify`` reads. With ``export``,
    the ONNX exports are made and checked once too. Returns the paths to put in
    ``[classifiers.toxicity]``.
    """
    if checkpoint is None or huggingface_config_path is None:
        _allow_network()
    import torch
    from detoxify import Detoxify
    from detoxify.detoxify import MODEL_URLS

    out_dir.mkdir(parents=True, exist_ok=True)
    hf_dir = out_dir / f"detoxify-{model_type}-hf"
    ckpt_out = out_dir / f"detoxify-{model_type}.ckpt"
    if checkpoint is None:
        source = torch.hub.load_state_dict_from_url(MODEL_URLS[model_type], map_location="cpu",
                                                    weights_only=False)
        detox = Detoxify(model_type=model_type, device="cpu")
    else:
        # an explicit conversion the operator asked for: the file is trusted here
        source = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if huggingface_config_path is None:
            detox = Detoxify(model_type=model_type, checkpoint=str(checkpoint), device="cpu")
        else:
            slim = {"config": source["config"], "state_dict": source["state_dict"]}
            tmp = out_dir / ".slim.ckpt"
            torch.save(slim, tmp)
            try:
                detox = load_detoxify(model_type, tmp, huggingface_config_path)
            finally:
                tmp.unlink(missing_ok=True)
    hf_dir.mkdir(exist_ok=True)
    detox.model.config.save_pretrained(hf_dir)
    detox.tokenizer.save_pretrained(hf_dir)
    config = json.loads(json.dumps(source["config"], default=str))
    torch.save({"config": config, "state_dict": detox.model.state_dict()}, ckpt_out)
    del detox, source
    release_memory()
    paths = {"checkpoint": ckpt_out, "huggingface_config_path": hf_dir}
    if export:
        from governance_bot.config import ToxicitySettings
        from rules.packs import load_pack

        onnx_path = out_dir / f"detoxify-{model_type}.onnx"
        settings = ToxicitySettings(model=model_type, checkpoint=ckpt_out,  # type: ignore[arg-type]
                                    huggingface_config_path=hf_dir, onnx_path=onnx_path)
        report = prepare_exports(settings, ToxicityPack.from_dict(load_pack("toxicity")))
        for line in report.lines:
            log.info("toxicity: %s", line)
        paths["onnx_path"] = onnx_path
    return paths


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rules.toxicity_export",
                                     description="Toxicity classifier tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write weights + tokenizer for an air-gapped install")
    prep.add_argument("--model", default="original",
                      choices=["original", "original-small", "unbiased", "unbiased-small",
                               "multilingual"])
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--checkpoint", type=Path, help="convert this Detoxify checkpoint")
    prep.add_argument("--huggingface-config-path", type=Path,
                      help="local config/tokenizer folder for --checkpoint (offline conversion)")
    prep.add_argument("--onnx", action="store_true",
                      help="also export the ONNX fast path and check it once")
    args = parser.parse_args(argv)
    paths = prepare_offline_bundle(args.out, args.model, args.checkpoint,
                                   args.huggingface_config_path, args.onnx)
    print("Copy this folder to the air-gapped machine and put in the config:")
    print("[classifiers.toxicity]")
    print(f'model = "{args.model}"')
    for key, path in paths.items():
        print(f'{key} = "{path}"')
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
