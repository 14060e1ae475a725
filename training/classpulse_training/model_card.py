"""MODEL_CARD.md for an exported version, rendered from its metrics.json (and quantification.json, where present)."""

from __future__ import annotations

import json
from pathlib import Path

from classpulse_core.share_correction import FILE_NAME

from .labels import EMOTIONS

CARD_FILE = "MODEL_CARD.md"
# From models/emotion/<version>/ to the repository's docs folder.
DATA_REPORT_LINK = "../../../docs/data-report/report.md"


def _per_class_table(per_class: dict[str, dict]) -> str:
    rows = ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    rows += [
        f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
        for name, m in per_class.items()
    ]
    return "\n".join(rows)


def _loss(training: dict) -> str:
    config = training["config"]
    labels = f"cross-entropy, label smoothing {config['label_smoothing']}, class weights frequency^-{config['class_weight_power']}"
    distillation = config.get("distillation") or {}
    if not distillation.get("teachers"):
        return labels
    teachers = ", ".join(
        f"`{t['run']}` ({t['val_accuracy']:.4f} on the selection split, {t['macs_per_face'] / 1e6:.0f} M MACs)"
        if t.get("macs_per_face") else f"`{t['run']}` ({t['val_accuracy']:.4f} on the selection split)"
        for t in training.get("teachers", [{"run": name, "val_accuracy": float("nan")} for name in distillation["teachers"]])
    )
    return (
        f"knowledge distillation: {1 - distillation['label_weight']:g} x KL to the mean logits of teachers {teachers}"
        f"{' on each face and its mirror image' if distillation.get('teacher_flip') else ''}, softened at temperature "
        f"{distillation['temperature']:g} (x T^2), + {distillation['label_weight']:g} x {labels}"
    )


def _start_row(training: dict) -> str:
    """The table's row for a fine-tune (config init_from): the weights it started from, and how good they were; and
    for weights restored from an exported version (restore-run), which version."""
    restored = training.get("restored_from")
    weights = (
        f"| weights | version {restored['version']}'s network, restored from its export (`restore-run`) and exported "
        "again: the training below is its training |\n" if restored else ""
    )
    start = training.get("init_from")
    if start is None:
        return weights
    if "version" in start:
        source = (f"exported version `{start['version']}` (run `{start['run']}`, accuracy {start['accuracy']:.4f} on "
                  f"{start['selection_split']} through its signature)")
    else:
        source = f"run `{start['run']}` (its best epoch {start['best_epoch']}, {start['val_accuracy']:.4f} on the selection split)"
    return f"{weights}| start | fine-tuned from the weights of {source} |\n"


def _small_face_coding(augment: dict) -> str:
    """What the low-resolution step adds to the small faces beside blur: sensor noise and JPEG (off: nothing)."""
    (least, most), (worst, best) = augment.get("low_res_noise", (0, 0)), augment.get("low_res_jpeg_quality", (0, 0))
    noise = f", noise sigma {least:g}-{most:g} gray levels" if most > 0 else ""
    return noise + (f", JPEG at quality {worst}-{best}" if best > 0 else "")


def _augmentation(augment: dict) -> str:
    described = (f"flips, rotation ±{augment['max_rotation_deg']}°, shift ±{augment['max_shift']:.0%}, scale "
                 f"{augment['scale_range']}, brightness/contrast, random erasing p={augment['erase_probability']}")
    if augment.get("low_res_probability"):
        (small, large), (least, most) = augment["low_res_side"], augment["low_res_blur"]
        described += (f", low resolution p={augment['low_res_probability']} (shrunk to {small:g}-{large:g} px, blurred "
                      f"by sigma {least:g}-{most:g} px{_small_face_coding(augment)}, enlarged back bicubically)")
    return described


def _training_table(training: dict, inference: dict) -> str:
    config, model = training["config"], training["config"]["model"]
    head = model.get("head", "global_average").replace("_", " ")
    return f"""| setting | value |
|---|---|
| architecture | widths {model['widths']}, 3x3 convs per stage {model['convs_per_stage']}, BatchNorm+ReLU, max-pool, {head} head, dense {model['dense_units']}, dropout {model['dropout']} |
| parameters | {training['parameters']:,} |
{_start_row(training)}| optimiser | AdamW, peak LR {config['peak_learning_rate']}, {config['warmup_epochs']} warm-up epochs then cosine decay, weight decay {config['weight_decay']} |
| loss | {_loss(training)} |
| augmentation | {_augmentation(config['augment'])} |
| batch / epochs | {config['batch_size']} / {training['epochs']} (best epoch {training['best_epoch']}) |
| precision | {training.get('precision', config['precision'])} training, {inference['compute_dtype']} arithmetic in the export |
| training time | {training['training_seconds'] / 60:.1f} min on {training.get('cpu') or '2 shared CPU cores'} |
| seed | {training['seed']} |
| command | `{training['command']}` |"""


def _training_section(metrics: dict) -> str:
    members, inference = metrics["training"]["members"], metrics["inference"]
    export_line = f"Export: `{metrics['export_command']}`"
    if len(members) == 1:
        return f"{_training_table(members[0], inference)}\n\n{export_line}"
    total = metrics["training"]["training_seconds"] / 60
    parts = [
        f"An ensemble of {len(members)} networks trained apart; the signature averages their logits. "
        f"{total:.1f} min of training in all."
    ]
    parts += [f"### Network {i + 1}: run `{m['run']}`\n\n{_training_table(m, inference)}" for i, m in enumerate(members)]
    return "\n\n".join([*parts, export_line])


def _learning_curves(members: list[dict]) -> str:
    names = ["learning_curves.png", *(f"learning_curves_{i}.png" for i in range(1, len(members)))]
    return "\n\n".join(f"![learning curves of {m['run']}](card/{name})" for m, name in zip(members, names, strict=True))


def _batchnorm_gain(inference: dict) -> str:
    accuracy = inference.get("batchnorm_selection_accuracy", {})
    if accuracy.get("before") is None:
        return ""
    return f" (best selection accuracy {accuracy['before']:.4f} with training's statistics, {accuracy['after']:.4f} re-estimated)"


def _class_shares_section(quantification: dict | None) -> str:
    if quantification is None:  # exported before class shares were corrected
        return ""
    check = quantification["class_mix_check"]
    windows = check["windows"]
    header = "| mix | " + " | ".join(windows) + " |"
    rows = [header, "|---|" + "---:|" * len(windows)]
    mixes = next(iter(windows.values()))
    # Checks written before the error was split into its parts have no `known_m_tvd`; before each class was left
    # out of its own M, no `half_m_tvd`.
    parts = [(key, label) for key, label in (("half_m_tvd", "M from the other half"), ("known_m_tvd", "M known"))
             if key in check["mean"][next(iter(windows))]]
    cell = "{raw_tvd:.3f} -> **{corrected_tvd:.3f}**{spread} (EM {em_tvd:.3f}" + "".join(f", {label} {{{key}:.3f}}" for key, label in parts) + ")"
    rows += [f"| {mix} | " + " | ".join(cell.format(spread="", **windows[w][mix]) for w in windows) + " |" for mix in mixes]
    spread = (" ± {corrected_tvd_sd_between_cuts:.3f} between cuts" if "splits" in check
              else " ± {corrected_tvd_se:.4f} (standard error)" if "corrected_tvd_se" in check["mean"][next(iter(windows))]
              else "")
    rows.append("| **mean** | " + " | ".join(cell.format(spread=spread.format(**check["mean"][w]), **check["mean"][w]) for w in windows) + " |")
    faces = " | ".join(f"{min(m['distinct_faces'] for m in windows[w].values()):.0f}-{max(m['distinct_faces'] for m in windows[w].values()):.0f}"
                       for w in windows)
    rows.append(f"| distinct face images a window | {faces} |")
    table = "\n".join(rows)
    return f"""
## Class shares

The API shows class shares corrected for this model's known errors (`{FILE_NAME}`: per signature, the mean
probabilities M[i][j] of emotion j over the {quantification['split']} faces of emotion i, {quantification['faces']}
faces through the exported signature): the point of the simplex that best solves M^T p = the window's mean
probabilities (probabilistic adjusted classify-and-count). The raw mean leans towards the mix the model learnt from.

Total-variation distance to the true shares (raw mean -> **corrected**; EM prior adjustment on every face's
probabilities, which the pipeline does not store, for reference), signature `{check['signature']}`, on generated
classes of {check['class_sizes'][0]}-{check['class_sizes'][1]} students made of {quantification['split']} faces,
{check['classes_per_mix']} classes per mix and window, {check['method']}:

{table}

Where the error comes from: "M known" corrects the same windows with M measured on the faces they are drawn from (in
sample: not a claim, the error left when M is exact, i.e. the window's own sampling noise and the method's bias).
Windows whose students keep one face image are the floor: about 20 faces a window, and M known does barely better.
With new face images every second, most of what remains is M's departure from the mean of the faces a window shows:
each class is drawn from a random half of each emotion's faces and corrected with M fitted on every face it does not
show (its own faces never inform its M); "M from the other half" corrects it with the other half alone (the former
two-fold split). K-fold splits with smaller held-out folds read worse, because a small fold strays from the
population as much as a small M does. No split of these faces reaches the deployment, where M comes from all of them
and the class's faces are new; `classpulse_training.class_mixes` says why. No variant of the method read 60 s windows
better (`classpulse_core.share_correction` lists those measured). On the pipeline's own crops (smaller, blurred,
JPEG'd, framed by the detector), `python -m classpulse_bench faces` reads classes of the same mixes made of each
family's crops (`shares_tvd_mixes_*`; docs/face-detection.md).
`python -m classpulse_training quantification --model models/emotion/{quantification['model_version']} --csv <fer2013.csv>`
measures it again; `python -m classpulse_bench shares` writes the same check under `bench/results/`.
"""


def _extra_rows(training: dict) -> str:
    """Where a run also learnt from `extra_training_csv`'s rows, which they are."""
    extra = training.get("extra_training_csv")
    if not extra:
        return ""
    return (
        f" (FER2013's and, after them, those of `{extra}`: the same faces framed again as the detector frames a face,"
        " written by `python -m classpulse_bench framed-faces`)"
    )


def render_model_card(metrics: dict, quantification: dict | None = None) -> str:
    training, calibration, cost = metrics["training"], metrics["calibration"], metrics["cost"]
    speed, inference = metrics["speed_faces_per_s"], metrics["inference"]
    split = metrics["selection_split"]
    flip = "on" if inference["flip_average"] else "off"
    networks = len(training["members"])
    passes = networks * (2 if inference["flip_average"] else 1)
    what = "A compact VGG-style CNN" if networks == 1 else f"An ensemble of {networks} compact VGG-style CNNs"
    weakest = min(metrics["per_class"], key=lambda name: metrics["per_class"][name]["recall"])
    disgust = metrics["per_class"]["Disgust"]["support"]
    return f"""# Emotion model, version {metrics['model_version']}

{what} that maps a 48x48 grayscale face crop to probabilities over the seven FER2013
emotions ({', '.join(EMOTIONS)}), served by TensorFlow Serving as model `emotion`.

## Intended use

ClassPulse aggregates these probabilities over the faces in a class, over time, to show a teacher
class-level trends. **It must never be used to judge, grade or single out an individual**: per-face predictions
are wrong about a third of the time, and a facial expression is not a reliable read of a person's inner state.

## Interface

* Signatures `serving_default` and `emotion`: input `faces` uint8 `[-1, 48, 48, 1]` (pixel values 0..255),
  output `probabilities` float32 `[-1, 7]` in the order above. `emotion_float` takes float32 faces in 0..255.
* Inside the signature: test-time flip averaging **{flip}**, softmax temperature **{calibration['temperature']}**;
  batch-norm statistics {inference.get('batchnorm_statistics', 'as training left them')}{_batchnorm_gain(inference)}.
{_single_pass_line(metrics)}* TF Serving warm-up requests: `assets.extra/tf_serving_warmup_requests`.

## Training data

FER2013 (Kaggle `fer2013.csv`): {training['train_rows']} {training['train_split']} rows for training{_extra_rows(training)}, {split}
({metrics['n']} rows) for checkpoint selection, the batch-norm, flip and temperature choices and the numbers below. See the [data report]({DATA_REPORT_LINK})
for class balance, sample faces, duplicates and near-blank images.

## Training

{_training_section(metrics)}

## Results on {split} (through the exported signature)

Accuracy **{metrics['accuracy']:.4f}**, macro-F1 **{metrics['macro_f1']:.4f}** (n = {metrics['n']}).
Flip averaging: {inference['accuracy_without_flip']:.4f} without, {inference['accuracy_with_flip']:.4f} with.

{_per_class_table(metrics['per_class'])}

![confusion matrix](card/confusion_matrix.png)

{_learning_curves(training['members'])}

{split} also chose the checkpoint and fitted the temperature, and the data report finds near-duplicate faces
shared between Training and {split}, so these figures are slightly optimistic; the Kaggle PrivateTest split (not in the training copy of the data) is the unbiased check:
`python -m classpulse_training evaluate --csv fer2013.csv` reports it when present.

## Calibration

Temperature scaling, fitted by NLL on {split}: T = {calibration['fitted_temperature']}. Top-label ECE
({calibration['ece_bins']} equal-width bins) at T = 1: {calibration['ece_before']:.4f}; at the fitted T:
{calibration['ece_with_fitted_temperature']:.4f} (NLL {calibration['nll_before']:.4f} -> {calibration['nll_with_fitted_temperature']:.4f}).
The fitted temperature is shipped only if it lowers the ECE; shipped T = **{calibration['temperature']}**,
ECE through the exported signature **{calibration['ece_after']:.4f}**.
{_class_shares_section(quantification)}
## Cost and speed

{passes} network pass(es) ({networks} network(s), flip averaging {flip}) of {cost['macs_per_face'] / passes / 1e6:.1f} M multiply-accumulates
on average = {cost['macs_per_face'] / 1e6:.1f} M MACs = {cost['flops_per_face'] / 1e6:.1f} MFLOPs per face, in {inference['compute_dtype']} arithmetic.
Measured on {speed.get('cpu', "this project's 2-core machine (AVX512-BF16 CPU)")} while other work ran, so expect run-to-run
differences of up to 2x with the machine's load: exported signature
{speed['signature_uint8_batch64']} faces/s at batch 64, {speed['signature_uint8_batch256']} faces/s at batch 256;
the bare Keras network{'s' if networks > 1 else ''} (no flip) {speed['keras_batch256']} faces/s at batch 256.
{_arithmetic_advice(inference['compute_dtype'])}

## Known limits

* FER2013 faces were collected by web image search: many are posed or exaggerated expressions, cropped
  and aligned differently from faces a classroom camera sees (angles, distance, lighting, occlusion by hands
  or screens). Expect lower accuracy in a classroom than on {split}.
* FER2013 has noisy labels (human agreement is around 65-70%) and is skewed: Disgust is ~1.5% of the training
  data and its {split} figures rest on {disgust} faces. The weakest class is {weakest}
  (recall {metrics['per_class'][weakest]['recall']:.2f}); see the confusion matrix for what it is mistaken for.
* The dataset is demographically skewed (mostly adults, over-representing lighter-skinned faces) and carries
  no demographic labels, so per-group accuracy is unmeasured; errors may be larger for under-represented groups.
* 48x48 grayscale input: subtle expressions are lost; the model sees a face crop, not context.
"""


def write_model_card(metrics: dict, version_dir: Path) -> Path:
    """The card of `version_dir`, with its class-share check where `quantification.json` is there."""
    quantification = version_dir / FILE_NAME
    path = version_dir / CARD_FILE
    path.write_text(render_model_card(metrics, json.loads(quantification.read_text()) if quantification.exists() else None))
    return path


def _arithmetic_advice(compute_dtype: str) -> str:
    """Where each arithmetic pays, for the export's: bfloat16 about 2.5x float32's rate with AMX or on AMD Zen 4, half
    of it on a CPU with AVX512-BF16 but no AMX, emulated (far slower) without bfloat16 at all."""
    if compute_dtype == "float32":
        return ("A float32 export runs on every CPU; TF Serving computes it in bfloat16 with `--mixed_precision=bfloat16`,\n"
                "about 2.5x faster on CPUs with AMX or on AMD Zen 4 and slower elsewhere (deploy/k8s/components/\n"
                "model-server-bfloat16; docs/performance.md, \"Arithmetic chosen by the model server's CPU\").")
    return ("bfloat16 pays off only on CPUs that multiply it faster than float32 (AMX, AMD Zen 4); elsewhere, a CPU with\n"
            "AVX512-BF16 but no AMX included, it runs slower than the float32 export, which every CPU runs and TF Serving\n"
            "computes in bfloat16 where that pays (`--mixed_precision=bfloat16`; docs/performance.md).")


def _single_pass_line(metrics: dict) -> str:
    single = metrics.get("single_pass")
    if not single:  # exported before the signature existed
        return ""
    return (
        f"* `{single['signature']}`: the same input and output, one pass of the network (no flip averaging, "
        f"{single['macs_per_face'] / 1e6:.1f} M multiply-accumulates a face, half the default's when it flips), "
        f"its own temperature {single['temperature']}: accuracy {single['accuracy']:.4f}, macro-F1 "
        f"{single['macro_f1']:.4f}, ECE {single['ece']:.4f} on {metrics['selection_split']}. For deployments that "
        "count cost per student first (`CLASSPULSE_MODEL_SIGNATURE`).\n"
    )
