"""Layer planning: a Sequential's layer stack as the spec of one native ``_core.Mlp``.

The native trainer knows only a chain of Dense layers with an input dropout, a dropout after each
layer and L1/L2 penalties, and a noise layer on the input or after a layer. Planning folds Flatten,
Dropout, Activation and the noise layers into that chain, and refuses, with a message naming the
layer, any stack the chain cannot represent.
"""

from __future__ import annotations

from . import layers as layers_mod

__all__ = [
    "check_complete",
    "check_output_for_loss",
    "combine_rates",
    "dense_spec",
    "input_noise",
    "plan",
]


def combine_rates(r1: float, r2: float) -> float:
    """Two dropouts in a row keep a unit with probability (1-r1)(1-r2): one dropout of this rate."""
    return 1.0 - (1.0 - r1) * (1.0 - r2)


def dense_spec(layer: layers_mod.Dense) -> dict:
    """One Dense layer as the native spec's dict (no dropout after it yet)."""
    kr, br, ar = layer.kernel_regularizer, layer.bias_regularizer, layer.activity_regularizer
    kc, bc = layer.kernel_constraint, layer.bias_constraint
    return {
        "units": layer.units,
        "activation": layer.activation,
        "use_bias": layer.use_bias,
        "kernel_l1": kr.l1 if kr else 0.0,
        "kernel_l2": kr.l2 if kr else 0.0,
        "bias_l1": br.l1 if br else 0.0,
        "bias_l2": br.l2 if br else 0.0,
        "dropout": 0.0,
        "activity_l1": ar.l1 if ar else 0.0,
        "activity_l2": ar.l2 if ar else 0.0,
        "kernel_constraint": kc._native(2, f"{layer.name}.kernel_constraint") if kc else None,
        "bias_constraint": bc._native(1, f"{layer.name}.bias_constraint")
        if bc and layer.use_bias
        else None,
    }


def _fold_noise(layer, site: dict, where: str) -> None:
    """Puts the noise layer on `site` (a dense spec, or the input's dict): one transform per site."""
    if layer.noise_param == 0.0:
        return  # the identity, also in training (as keras)
    if site.get("noise"):
        raise NotImplementedError(
            f"noise layer {layer.name!r}: pyreg supports one noise layer on {where}, not two in a row"
        )
    if site.get("dropout", 0.0) > 0.0:
        raise NotImplementedError(
            f"noise layer {layer.name!r}: a Dropout and a noise layer on {where} are not supported together"
        )
    if site.get("activity_l1") or site.get("activity_l2"):
        raise NotImplementedError(
            f"noise layer {layer.name!r}: a noise layer after a Dense layer with an activity_regularizer "
            "is not supported"
        )
    site["noise"], site["noise_param"] = layer.noise_kind, float(layer.noise_param)


def input_noise(layers) -> dict:
    """The ``_core.Mlp`` keywords for a noise layer on the input (before the first Dense): {} if none."""
    site: dict = {}
    for layer in layers:
        if isinstance(layer, layers_mod.Dense):
            break
        if isinstance(layer, layers_mod._NoiseLayer):
            _fold_noise(layer, site, "the input")
    if not site:
        return {}
    return {"input_noise": site["noise"], "input_noise_param": site["noise_param"]}


def _check_activity(spec: dict, layer) -> None:
    if spec["activation"] == "softmax" and (spec["activity_l1"] or spec["activity_l2"]):
        raise NotImplementedError(
            f"Dense layer {layer.name!r}: an activity_regularizer on a softmax output is not supported"
        )


def plan(layers, sample_shape):
    """The native spec of the layer stack: (input_dropout, [dense spec dicts], [Dense layers]).

    Raises ValueError/NotImplementedError for stacks the trainer cannot represent.
    """
    input_dropout = 0.0
    specs: list[dict] = []
    denses: list[layers_mod.Dense] = []
    flattened = sample_shape is None or len(sample_shape) == 1
    last_was_dense = False
    input_site: dict = {"dropout": 0.0}  # the input's dropout and noise (see input_noise)
    for layer in layers:
        if isinstance(layer, layers_mod.Flatten):
            flattened = True
            last_was_dense = False
        elif isinstance(layer, layers_mod._NoiseLayer):
            if specs:
                _fold_noise(layer, specs[-1], f"the output of Dense layer {denses[-1].name!r}")
            else:
                _fold_noise(layer, input_site, "the input")
            last_was_dense = False
        elif isinstance(layer, layers_mod.Dropout):
            site = specs[-1] if specs else input_site
            if layer.rate > 0.0 and site.get("noise"):
                raise NotImplementedError(
                    f"Dropout layer {layer.name!r}: a Dropout and a noise layer on the same layer's output "
                    "(or on the input) are not supported together"
                )
            if not specs:
                input_dropout = combine_rates(input_dropout, layer.rate)
                input_site["dropout"] = input_dropout
            else:
                specs[-1]["dropout"] = combine_rates(specs[-1]["dropout"], layer.rate)
            last_was_dense = False
        elif isinstance(layer, layers_mod.Activation):
            if not (last_was_dense and specs[-1]["activation"] == "linear"):
                raise NotImplementedError(
                    f"Activation layer {layer.name!r} must directly follow a Dense layer with a linear "
                    "activation (pyreg folds it into that layer)"
                )
            if denses[-1].activity_regularizer is not None:
                raise NotImplementedError(
                    f"Activation layer {layer.name!r} cannot be folded into Dense layer {denses[-1].name!r}, "
                    "whose activity_regularizer applies to its own (linear) output; give the Dense layer the "
                    "activation instead"
                )
            specs[-1]["activation"] = layer.activation
            last_was_dense = False
        elif isinstance(layer, layers_mod.Dense):
            if not flattened:
                raise ValueError(
                    f"Dense layer {layer.name!r} receives samples of shape {tuple(sample_shape)}; add a "
                    "Flatten() layer before it (pyreg's Dense works on flat samples)"
                )
            if specs and specs[-1]["activation"] == "softmax":
                raise NotImplementedError(
                    "softmax is supported only as the last Dense layer's activation"
                )
            specs.append(dense_spec(layer))
            _check_activity(specs[-1], layer)
            denses.append(layer)
            last_was_dense = True
        else:
            raise TypeError(
                f"pyreg's Sequential cannot run layer {layer.name!r} of type {type(layer).__name__}"
            )
    return input_dropout, specs, denses


def check_complete(layers, sample_shape) -> None:
    """Checks that apply to a finished stack (not while layers are still being added)."""
    specs = plan(layers, sample_shape)[1]
    if not specs:
        raise ValueError("the model needs at least one Dense layer")
    if specs[-1]["dropout"] > 0:
        raise NotImplementedError(
            "Dropout after the output layer is not supported (it would drop output probabilities)"
        )
    if specs[-1].get("noise"):
        raise NotImplementedError(
            "a noise layer after the output layer is not supported (it would perturb output probabilities)"
        )


def check_output_for_loss(layers, sample_shape, loss) -> None:
    """Checks a finished stack and that its output layer's activation suits ``loss``."""
    check_complete(layers, sample_shape)
    out = plan(layers, sample_shape)[1][-1]["activation"]
    want = "linear" if loss.from_logits else "softmax"
    if out != want:
        hint = (
            "use a linear last layer with from_logits=True"
            if loss.from_logits
            else "use activation='softmax' on the last Dense layer, or from_logits=True with a linear one"
        )
        raise ValueError(
            f"{loss.name}(from_logits={loss.from_logits}) needs a {want} output layer; the last "
            f"Dense layer has activation {out!r} ({hint})"
        )
