"""`python -m classpulse_bench shares` (part of `make bench-model`): how well class shares are read, raw mean against
the corrected shares the API shows, on generated classes of PublicTest faces through the classifier's signature
(`classpulse_training.class_mixes`: the mixes, the windows and the leave-the-class-out fit of M that keeps it honest)."""

from __future__ import annotations

from classpulse_bench import machine
from classpulse_bench.model_bench import ModelBenchResult, public_test
from classpulse_bench.report import Section

TARGET_TVD = 0.05  # issue 20: mean total-variation distance to the truth


def run_shares_bench(csv: str | None, tiny: bool = False) -> ModelBenchResult:
    from classpulse_training.class_mixes import check_class_mixes
    from classpulse_training.quantification import CHECKED_SIGNATURE
    from classpulse_training.serving import load_signature, predict_probabilities
    from classpulse_training.versions import latest_version_dir

    data = public_test(csv, tiny=False)
    model_dir = latest_version_dir()
    probabilities = predict_probabilities(load_signature(model_dir, CHECKED_SIGNATURE), data.images)
    check = check_class_mixes(probabilities, data.labels, classes=20 if tiny else 200)
    result = ModelBenchResult(context={
        "machine": machine.describe(),
        "model": f"emotion v{model_dir.name}, signature {CHECKED_SIGNATURE}",
        "faces": f"FER2013 PublicTest, n = {len(data.labels)}; {check['method']}",
        "classes": f"{check['class_sizes'][0]}-{check['class_sizes'][1]} students, {check['classes_per_mix']} per mix and window",
    })
    for window, mixes in check["windows"].items():
        section = Section(f"Class shares, {window}")
        for mix, figures in mixes.items():
            section.add(mix, **figures)
        section.add("mean", **check["mean"][window], target_met=check["mean"][window]["corrected_tvd"] <= TARGET_TVD)
        section.note = (f"mean total-variation distance to the truth; raw: mean probabilities; corrected: what the API shows; em: EM prior adjustment on every face "
                        f"(not stored by the pipeline); half_m: M from the other half of each emotion's faces only; known_m: corrected with M measured on "
                        f"the faces the windows are drawn from (in sample: the error that is not M's estimation noise); distinct_faces: face images a window shows; target: mean corrected <= {TARGET_TVD}")
        result.sections.append(section)
    return result
