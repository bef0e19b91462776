"""The quickstart stage benchmark runs each stage through `run_training` and its figures agree."""

import pytest

from vlbert.bench.quickstart_stages import measure_stages
from vlbert.quickstart.plan import QuickstartPlan


@pytest.mark.slow
def test_stage_speeds_are_consistent(tmp_path):
    peak, speeds = measure_stages(QuickstartPlan.smoke(), ["pretrain", "vqa"], steps=2, warmup=1, work_dir=tmp_path)
    assert [s.stage for s in speeds] == ["pretrain", "vqa"]
    assert [s.task for s in speeds] == ["pretraining", "vqa"]
    for s in speeds:
        assert s.batch == 16 and s.step_flops > 0 and s.seconds_per_step > 0
        assert s.steps_per_s == pytest.approx(1 / s.seconds_per_step)
        assert s.achieved_flops_per_s == pytest.approx(s.step_flops / s.seconds_per_step)
        assert s.mfu == pytest.approx(s.achieved_flops_per_s / peak)
        assert s.setup_s > 0  # building the vocabulary and the model, saving: not counted in a step
    pre, vqa = speeds
    # pre-training reads 96-token descriptions and runs four losses; VQA 24-token questions and one
    assert pre.step_flops > 2 * vqa.step_flops
    assert list(tmp_path.iterdir()) == []  # the generated data and runs are removed


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage 'vqa-first'; choose from pretrain, vqa, retrieval, caption"):
        measure_stages(QuickstartPlan.smoke(), ["vqa-first"], steps=1, warmup=1)
