"""The box plots of a study: a panel per metric, a box per model."""

import pytest

from vae_tf.analysis.study_figures import metric_boxes


def test_one_panel_per_metric_and_one_box_per_model_in_order():
    values = {m: {"vae": [0.1, 0.2, 0.3], "tcvae": [0.4], "dipvae": []} for m in ("mig", "sap", "dci", "factor_vae")}
    fig = metric_boxes(values, ["vae", "tcvae", "dipvae"], title="3 of 4 runs")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["mig", "sap", "dci", "factor_vae"]
    assert len(fig.axes) == 6  # two rows of three; the last two hidden
    for ax in panels:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["vae", "tcvae", "dipvae"]
        dots = [line for line in ax.lines if line.get_linestyle() == "None"]
        assert [len(line.get_xdata()) for line in dots] == [3, 1, 0]  # every run a dot over its box
    assert fig._suptitle.get_text() == "3 of 4 runs"


def test_no_metric_is_refused():
    with pytest.raises(ValueError, match="values must hold at least one metric"):
        metric_boxes({}, ["vae"])


def test_curves_a_panel_per_metric_a_line_per_model_through_the_seed_means():
    from vae_tf.analysis.study_figures import metric_curves

    curves = {m: {"vae": {500: [0.2, 0.4], 250: [0.1, 0.3, 0.2]}, "tcvae": {250: [0.5]}} for m in ("mig", "factor_vae")}
    fig = metric_curves(curves, title="2 budgets")
    assert [ax.get_title() for ax in fig.axes] == ["mig", "factor_vae"]
    for ax in fig.axes:
        lines = [line for line in ax.lines if line.get_linestyle() == "-"]
        assert [line.get_label() for line in lines] == ["vae", "tcvae"]
        assert list(lines[0].get_xdata()) == [250, 500]  # sorted by steps
        assert lines[0].get_ydata() == pytest.approx([0.2, 0.3])  # the means over seeds
        dots = [line for line in ax.lines if line.get_linestyle() == "None"]
        assert sum(len(line.get_xdata()) for line in dots) == 6  # every run a dot
    assert fig._suptitle.get_text() == "2 budgets"


def test_curves_without_a_metric_are_refused():
    from vae_tf.analysis.study_figures import metric_curves

    with pytest.raises(ValueError, match="curves must hold at least one metric"):
        metric_curves({})
