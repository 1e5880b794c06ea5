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
