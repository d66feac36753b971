"""The exact counts README quotes: MobileNet 1.0_224 by kind of layer (paper Table 2), its twin (Table 4),
the 0.75 model, and the classic single-layer example. Nothing here is timed: the figures are exact.

Usage: python benchmarks/zoo_counts.py [--out benchmarks/results/zoo_counts.json]

Writes the figures with the command and machine to `--out`; `python benchmarks/render_readme.py`
puts them into README.md.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "zoo_counts.json")
LAYER = "12x12x3:k5:s1:valid:n256"


def model_counts(name):
    """Total mult-adds and parameters of a zoo model, and each kind's totals and shares."""
    import mobilenet_sep

    counted = mobilenet_sep.profile(mobilenet_sep.create_model(name))
    return {"model": name, "mult_adds": counted.mult_adds, "params": counted.params, "by_kind": counted.by_kind()}


def layer_counts(text):
    """The standard and separable versions of one layer spec: mult-adds of each part and the closed form."""
    from mobilenet_sep.profiler import profile
    from mobilenet_sep.speed.compare import LayerSpec

    spec = LayerSpec.parse(text)
    separable, standard = (profile(model) for model in spec.models())
    parts = {row.kind: row.mult_adds for row in separable.rows if row.in_total}
    return {
        "layer": str(spec),
        "standard_mult_adds": standard.mult_adds,
        "depthwise_mult_adds": parts["depthwise"],
        "pointwise_mult_adds": parts["pointwise"],
        "separable_mult_adds": separable.mult_adds,
        "closed_form_cost_ratio": spec.closed_form,
        "saving": standard.mult_adds / separable.mult_adds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=RESULT, help=f"result file (default {os.path.relpath(RESULT)})")
    args = parser.parse_args()

    from mobilenet_sep.utils.record import result_record, script_command, write_result

    separable, twin = model_counts("mobilenet_v1_1.0_224"), model_counts("conv_mobilenet_v1_1.0_224")
    figures = {
        "mobilenet_v1_1.0_224": separable,
        "conv_mobilenet_v1_1.0_224": twin,
        "mobilenet_v1_0.75_224": model_counts("mobilenet_v1_0.75_224"),
        "twin_saving": twin["mult_adds"] / separable["mult_adds"],
        "layer": layer_counts(LAYER),
    }
    for name in ("mobilenet_v1_1.0_224", "conv_mobilenet_v1_1.0_224", "mobilenet_v1_0.75_224"):
        print(f"{name:28s} {figures[name]['mult_adds']:>15,} mult-adds {figures[name]['params']:>12,} parameters")
    for kind, totals in separable["by_kind"].items():
        if "mult_adds_percent" in totals:
            print(f"  {kind:10s} {totals['mult_adds_percent']:6.2f} % of mult-adds, {totals['kernel_weights_percent']:6.2f} % of weights")
    layer = figures["layer"]
    print(f"twin / separable: {figures['twin_saving']:.2f}x; {LAYER}: {layer['standard_mult_adds']:,} vs {layer['separable_mult_adds']:,}")
    print(f"wrote {write_result(args.out, result_record(figures, command=script_command()))}")


if __name__ == "__main__":
    main()
