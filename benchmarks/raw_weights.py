"""Save the raw (not weight-averaged) weights of a stopped run from its BackupAndRestore state.

    python benchmarks/raw_weights.py --run-dir runs/pp2_fm --out runs/pp2_raw.keras

With `ema_momentum`, a run's `.keras` files hold the averaged weights and its
`backup/` holds the raw ones with the optimizer. This rebuilds the run's model,
loads the backup, prints the step it reached and the validation-tail bits/dim
of both weight sets (the last `--images` train images, default 500), and writes
the raw weights as a `.keras` file for `--init-from`, with a `.json` beside it
recording where they came from (`ship_pretrained.py` lists it as a training stage).
"""

import argparse
import json
import os

import numpy as np

import keras_pixelcnn as kp
from keras_pixelcnn.data import load
from keras_pixelcnn.data.images import atomic_path, write_json
from keras_pixelcnn.training import TrainConfig
from keras_pixelcnn.training.common import compiled_model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    with open(os.path.join(args.run_dir, "config.json")) as handle:
        config = TrainConfig.from_dict(json.load(handle))
    with open(os.path.join(args.run_dir, "run.json")) as handle:
        status = json.load(handle)
    # The backup replaces every weight, so no init_from weights are loaded here.
    model = compiled_model(config, tuple(status["image_shape"]), status["num_classes"], total_steps=1)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(args.run_dir, "backup", "latest.weights.h5"))
    images = config.preprocessing().apply_numpy(load(config.dataset, "train").images[-args.images:])
    steps = int(model.optimizer.iterations)
    raw = float(np.mean(kp.bits_per_dim(model, images)))
    print(f"step {steps}\nraw weights: {raw:.4f} bits/dim")
    with atomic_path(args.out) as temporary:
        model.save(temporary, include_optimizer=False)
    note = f"raw weights after {steps} steps, from the backup: {raw:.4f} bits/dim on the last {args.images} train images"
    if model.optimizer.use_ema:
        model.optimizer.finalize_variable_values(model.trainable_variables)  # the average into the model
        averaged = float(np.mean(kp.bits_per_dim(model, images)))
        print(f"averaged weights: {averaged:.4f} bits/dim")
        note += f" (the weight average: {averaged:.4f})"
    record = {key: value for key, value in config.to_dict().items()
              if key in ("batch_size", "learning_rate", "lr_schedule", "ema_momentum", "seed", "init_from")}
    write_json(os.path.splitext(args.out)[0] + ".json",
               dict(record, run_dir=args.run_dir, steps=steps, images_seen=steps * config.batch_size, note=note))


if __name__ == "__main__":
    main()
