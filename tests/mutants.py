"""Mutations of the core modules and the tests that must kill them (see docs/MUTATIONS.md).

    python tests/mutants.py            # every mutant
    python tests/mutants.py noise      # the mutants whose name contains "noise"

Each mutant replaces one exact snippet of a source file, runs the tests named
beside it, restores the file (also on Ctrl-C) and reports "killed" (the tests
failed) or "SURVIVED". Not collected by pytest: it runs the suite itself.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATS = "tests/test_sampler_statistics.py"
BANDED = "tests/test_sampling.py::test_loops_without_xla_draw_the_naive_images"
DIAGONAL_ENGINE = "tests/test_pixelrnn.py::test_the_diagonal_bilstm_engine_computes_the_models_parameters_at_every_pixel"

# (name, file, original snippet, mutated snippet, pytest arguments)
MUTANTS = [
    ("gumbel_to_exponential_noise", "keras_pixelcnn/distributions/base.py",
     "    return -ops.log(-ops.log(noise))", "    return -ops.log(noise)",
     [STATS, "-k", "follow"]),
    ("temperature_ignored", "keras_pixelcnn/distributions/base.py",
     "log_probs = log_probs / ops.cast(temperature, log_probs.dtype) + gumbel", "log_probs = log_probs + gumbel",
     [STATS, "-k", "follow and 1ch"]),
    ("greedy_takes_argmin", "keras_pixelcnn/distributions/base.py",
     'return ops.cast(ops.top_k(log_probs, 1)[1][..., 0], "int32")',
     'return ops.cast(ops.top_k(-log_probs, 1)[1][..., 0], "int32")', [STATS, "-k", "greedy"]),
    ("categorical_reads_next_channel", "keras_pixelcnn/distributions/categorical.py",
     "ops.take(logits, channel, axis=1)", "ops.take(logits, (channel + 1) % self.channels, axis=1)",
     [STATS, "-k", "3ch"]),
    ("mixture_samples_with_next_channels_mean", "keras_pixelcnn/distributions/logistic_mixture.py",
     "mean = pick(means)[:, None, :]",
     "mean = ops.take(means, (channel + 1) % self.channels, axis=1)[:, None, :]", [STATS, "-k", "pixelcnn_pp-3ch"]),
    ("categorical_log_prob_of_probabilities", "keras_pixelcnn/distributions/categorical.py",
     "at_least_float32(logits),\n                                                    from_logits=True)",
     "at_least_float32(logits),\n                                                    from_logits=False)",
     [STATS, "-k", "follow and gated_pixelcnn-1ch"]),
    ("tflite_log_prob_unnormalised", "keras_pixelcnn/distributions/categorical.py",
     "return ops.sum(ops.log_softmax(logits, axis=-1) * one_hot, axis=-1)", "return ops.sum(logits * one_hot, axis=-1)",
     ["tests/test_export.py", "-k", "tflite_graphs_equal"]),
    ("mixture_log_prob_drops_the_weights", "keras_pixelcnn/distributions/logistic_mixture.py",
     "joint = ops.logsumexp(log_pi[..., None, :] + ops.cumsum(log_pmf, axis=-2), axis=-1)",
     "joint = ops.logsumexp(ops.cumsum(log_pmf, axis=-2), axis=-1)",
     ["tests/test_models.py", "-k", "sum_to_one and pixelcnn_pp-1-None"]),
    ("mask_a_reads_its_own_colour", "keras_pixelcnn/layers/masks.py",
     'allowed = g_in < g_out if mask_type == "A" else g_in <= g_out', "allowed = g_in <= g_out",
     ["tests/test_masks.py", "tests/test_models.py", "-k", "mask_a or centre_tap or causal_on_every"]),
    ("mask_hides_the_left_of_the_row", "keras_pixelcnn/layers/masks.py",
     "    mask[ch, :cw] = 1.0\n", "    mask[ch, :cw] = 0.0\n", ["tests/test_likelihood.py", "-k", "beats"]),
    ("masked_conv_drops_the_centre_row", "keras_pixelcnn/layers/masked_conv.py",
     "[: self.kernel_size[0] // 2 + 1]", "[: self.kernel_size[0] // 2]",
     ["tests/test_masked_conv.py", "-k", "numpy"]),
    ("masked_conv_pads_below", "keras_pixelcnn/layers/masked_conv.py",
     "return ((kh // 2, 0), (kw // 2, kw // 2))", "return ((0, kh // 2), (kw // 2, kw // 2))",
     ["tests/test_masked_conv.py", "-k", "numpy"]),
    ("masked_conv_unmasked_rows", "keras_pixelcnn/layers/masked_conv.py",
     "return self.masked_kernel(kernel)[: self.kernel_size[0] // 2 + 1]",
     "return kernel[: self.kernel_size[0] // 2 + 1]", ["tests/test_masked_conv.py", "-k", "numpy"]),
    ("precision_auto_ignores_the_gpu", "keras_pixelcnn/training/precision.py",
     'if setting == "off" or (setting == "auto" and not gpu):', 'if setting == "off":',
     ["tests/test_precision.py", "-k", "policy_of_each"]),
    ("precision_bf16_is_float16_on_tensorflow", "keras_pixelcnn/training/precision.py",
     'if setting == "bf16":', 'if setting == "bf32":', ["tests/test_precision.py", "-k", "policy_of_each"]),
    ("gate_swaps_value_and_gate", "keras_pixelcnn/layers/gated.py",
     "a, b = inputs[..., 0::2], inputs[..., 1::2]", "b, a = inputs[..., 0::2], inputs[..., 1::2]",
     ["tests/test_layers.py"]),
    ("concat_elu_order_swapped", "keras_pixelcnn/layers/gated.py",
     "ops.elu(ops.stack([inputs, -inputs], axis=-1))", "ops.elu(ops.stack([-inputs, inputs], axis=-1))",
     ["tests/test_layers.py"]),
    ("leading_shape_reads_the_shape", "keras_pixelcnn/layers/shapes.py",
     "    if len(x.shape) > 1 and all(", "    if False and all(",
     ["tests/test_layers.py", "tests/test_logistic_mixture.py", "-k", "unknown_sizes"]),
    ("leading_shape_reverses_the_sizes", "keras_pixelcnn/layers/shapes.py",
     "return (-1,) + after_batch[:-1]", "return (-1,) + after_batch[:-1][::-1]",
     ["tests/test_layers.py", "tests/test_logistic_mixture.py"]),
    ("noise_hash_constant", "keras_pixelcnn/sampling/noise.py",
     "x = x * tf.constant(0x846CA68B, _U32)", "x = x * tf.constant(0x846CA68D, _U32)", ["tests/test_noise.py"]),
    ("shift_right_rule_reads_current_column", "keras_pixelcnn/sampling/rules.py",
     "        return values.vector(self.inputs[0], row, shifted(col, -1))",
     "        return values.vector(self.inputs[0], row, col)", ["tests/test_sampling.py"]),
    ("band_write_lands_in_the_top_row", "keras_pixelcnn/sampling/values.py",
     "self._write_band(cache, [top, shifted(col, left)]", "self._write_band(cache, [0, shifted(col, left)]",
     [BANDED]),
    ("band_channel_write_lands_in_channel_0", "keras_pixelcnn/sampling/values.py",
     "[top, shifted(col, left), channel], value)", "[top, shifted(col, left), 0], value)", [BANDED]),
    ("strided_write_swaps_row_and_column", "keras_pixelcnn/sampling/values.py",
     "begin = index_vector([0] + list(start) + [0] * (rank - 1 - len(start)))",
     "begin = index_vector([0] + list(start)[:2][::-1] + list(start)[2:] + [0] * (rank - 1 - len(start)))",
     ["tests/test_sampling.py", "-k", "strided_cache_write"]),
    ("band_write_lands_in_image_0", "keras_pixelcnn/sampling/values.py",
     "images * tf.constant([[1] + [0] * (n - 1)])",
     "images * tf.constant([[0] * n])", [BANDED]),
    ("band_read_rows_left_out_of_the_column_loop", "keras_pixelcnn/sampling/incremental.py",
     'phase == "row" and key[0] in read]', 'phase == "row" and key[0] not in read]', [BANDED]),
    ("frozen_weights_drop_the_bias", "keras_pixelcnn/sampling/incremental.py",
     "{name: np.asarray(tensor) for name, tensor in step.rule.prepare().items()}",
     "{name: np.asarray(tensor) * (name != 'bias') for name, tensor in step.rule.prepare().items()}", [BANDED]),
    ("matmul_drops_the_bias", "keras_pixelcnn/sampling/rules.py",
     "        y = tf.nn.bias_add(y, weights[\"bias\"])", "        y = y", ["tests/test_sampling.py", "-k", "seed"]),
    ("band_closes_with_its_top_row", "keras_pixelcnn/sampling/incremental.py",
     "bands.caches[key][:, t.pad[0]])", "bands.caches[key][:, 0])", [BANDED]),
    ("band_opens_a_row_low", "keras_pixelcnn/sampling/incremental.py",
     "            row = coarse(image_row, t.factor)\n", "            row = coarse(image_row + 1, t.factor)\n", [BANDED]),
    ("steps_of_other_schedules_share_a_cond", "keras_pixelcnn/sampling/incremental.py",
     "if runs and k is not None and key(runs[-1][-1]) == k:", "if runs and k is not None:", [BANDED]),
    ("row_steps_run_without_their_cond", "keras_pixelcnn/sampling/incremental.py",
     "if np.all(stop - first > k):", "if True:", [BANDED]),
    ("log_prob_mean_not_sum", "keras_pixelcnn/likelihood.py",
     "return per_subpixel.reshape(len(images), math.prod(images.shape[1:])).sum(axis=1) if reduce else per_subpixel",
     "return per_subpixel.reshape(len(images), math.prod(images.shape[1:])).mean(axis=1) if reduce else per_subpixel",
     ["tests/test_likelihood.py"]),
    ("log_prob_in_half_precision", "keras_pixelcnn/likelihood.py",
     "    model = inference_model(model)\n    images = check_images(model, images)",
     "    images = check_images(model, images)", ["tests/test_precision.py", "-k", "likelihood_and_scores"]),
    ("loss_summed_over_the_batch", "keras_pixelcnn/likelihood.py",
     "        super().__init__(name=name, **kwargs)\n        self.distribution = distribution",
     '        super().__init__(name=name, reduction="sum", **kwargs)\n        self.distribution = distribution',
     ["tests/test_training.py", "-k", "mirrored_sgd"]),
    ("resume_replays_the_first_batches", "keras_pixelcnn/training/tf_backend.py",
     'first_batch=completed_epochs(os.path.join(run_dir, "backup")) * steps)', "first_batch=0)",
     ["tests/test_training.py", "-k", "rerun_resumes"]),
    ("tfds_shuffled_by_dataset_shuffle", "keras_pixelcnn/data/pipeline.py",
     "            images, labels = _read_all(dataset, source.image_shape, preprocessing)\n"
     "            dataset = _array_dataset(images, labels, shuffle, repeat, seed, first_example=first_batch * batch_size)",
     "            dataset = dataset.cache().shuffle(20000, seed=seed).repeat()",
     ["tests/test_training.py", "-k", "mirrored_sgd"]),
    ("best_checkpoint_of_non_finite_weights", "keras_pixelcnn/training/callbacks.py",
     "and math.isfinite(value) and value < self.best and not non_finite_weights(self.model):",
     "and value < self.best:", ["tests/test_precision.py", "-k", "checkpoints_never"]),
    # Hostile input (issue 16): each check a refusal rests on.
    ("best_json_names_the_epoch_before", "keras_pixelcnn/training/callbacks.py",
     '{"epoch": epoch + 1, "monitor"', '{"epoch": epoch, "monitor"',
     ["tests/test_training.py", "-k", "trained_longer_goes_on"]),
    ("hostile_temperature_minimum_ignored", "keras_pixelcnn/sampling/sampler.py",
     "MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE)", "0 < temperature <= MAX_TEMPERATURE)", ["tests/test_hostile.py", "-k", "near_0"]),
    ("hostile_export_max_batch_ignored", "export/signatures.py",
     "batch, self.max_batch, message", "batch, self.max_batch + 1, message",
     ["tests/test_hostile_export.py", "-k", "sample_with or log_prob or complete"]),
    ("hostile_export_empty_batch_runs_the_model", "export/signatures.py",
     "return tf.cond(tf.shape(tensors[0])[0] > 0, lambda: method(**dict(zip(arg_names, tensors))),",
     "return tf.cond(tf.shape(tensors[0])[0] >= 0, lambda: method(**dict(zip(arg_names, tensors))),",
     ["tests/test_hostile_export.py", "-k", "empty_batch"]),
    ("hostile_export_temperature_only_positive", "export/signatures.py",
     "good = tf.math.is_finite(temperature) & (temperature >= MIN_TEMPERATURE)", "good = temperature > 0",
     ["tests/test_hostile_export.py", "-k", "edges"]),
    ("export_loop_retraced_in_save", "export/signatures.py",
     "jit_compile=jit_compile).get_concrete_function()", "jit_compile=jit_compile)",
     ["tests/test_export.py", "-k", "traces_the_loop_once"]),
    ("tflite_direct_converter_differs", "export/tflite.py",
     "    converter.exclude_conversion_metadata = True", "    converter.exclude_conversion_metadata = converter_class is None",
     ["tests/test_export.py", "-k", "traces_the_loop_once"]),
    ("cli_usage_lines_before_the_error", "cli/main.py",
     "        raise _OneLineError(error) from None", "        raise",
     ["tests/test_cli.py", "-k", "one_error_line"]),
    ("hostile_export_without_lock", "export/savedmodel.py",
     "        lock.acquire()  # creates `parent`", "        os.makedirs(parent, exist_ok=True)",
     ["tests/test_hostile.py", "-k", "second_export"]),
    ("hostile_bomb_warning_not_an_error", "keras_pixelcnn/data/images.py",
     '            warnings.simplefilter("error", Image.DecompressionBombWarning)', "            pass",
     ["tests/test_hostile.py", "-k", "bomb"]),
    ("hostile_output_may_be_an_input", "keras_pixelcnn/data/images.py",
     "        if other != option:", "        if False:", ["tests/test_hostile.py", "-k", "mistake"]),
    ("transient_read_by_another_grid_run", "keras_pixelcnn/sampling/incremental.py",
     "source.key in runs and runs.get(step.output.key) == runs[source.key]", "True",
     ["tests/test_sampling.py", "-k", "without_xla and pixelcnn_pp"]),
    ("transient_down_sampled_tensors_all_cached", "keras_pixelcnn/sampling/incremental.py",
     "kept = [step for step in run if step.output.cached]", "kept = run",
     ["tests/test_sampling.py", "-k", "without_xla and pixelcnn_pp"]),
    ("attention_mask_includes_the_diagonal", "keras_pixelcnn/layers/attention.py",
     "return np.tril(np.ones((positions, positions), bool), -1)",
     "return np.tril(np.ones((positions, positions), bool), 0)",
     ["tests/test_models.py", "-k", "causal_on_every and pixelsnail-1-None"]),
    ("attention_softmax_max_over_masked_logits", "keras_pixelcnn/layers/attention.py",
     "top = ops.max(ops.where(mask, logits, lowest), axis=-1, keepdims=True)",
     "top = ops.max(logits, axis=-1, keepdims=True)", ["tests/test_pixelsnail.py", "-k", "masked_softmax"]),
    ("attention_unscaled_logits", "keras_pixelcnn/layers/attention.py",
     'logits = ops.einsum("bnhd,bmhd->bhnm", queries, keys) * scale',
     'logits = ops.einsum("bnhd,bmhd->bhnm", queries, keys)', ["tests/test_pixelsnail.py", "-k", "numpy_reference"]),
    ("attention_half_precision_softmax", "keras_pixelcnn/layers/attention.py",
     'else ops.cast(x, "float32") for x in inputs]', "else x for x in inputs]",
     ["tests/test_pixelsnail.py", "-k", "half_precision"]),
    ("attention_query_reads_the_image", "keras_pixelcnn/models/pixelsnail.py",
     'name=f"{name}_query")(ul)', 'name=f"{name}_query")(both)',
     ["tests/test_models.py", "-k", "causal_on_every and pixelsnail-1-None"]),
    ("attention_cache_reads_the_current_pixel", "keras_pixelcnn/sampling/attention_rule.py",
     "tf.range(width) < col]", "tf.range(width) <= col]",
     ["tests/test_pixelsnail.py", "-k", "every_pixel"]),
    ("attention_cache_reads_the_current_row_twice", "keras_pixelcnn/sampling/attention_rule.py",
     "tf.range(height * width) < row * width,", "tf.range(height * width) < (row + 1) * width,",
     ["tests/test_pixelsnail.py", "-k", "every_pixel"]),
    ("attention_block_products_keep_other_heads_blocks", "keras_pixelcnn/sampling/attention_rule.py",
     "tf.reduce_sum(out * tf.constant(np.eye(heads)[:, :, None], v.dtype), axis=2)",
     "tf.reduce_sum(out * tf.constant(np.ones((heads, heads, 1)), v.dtype), axis=2)",
     ["tests/test_pixelsnail.py", "-k", "every_pixel"]),
    ("wavefront_outside_lanes_write_their_values", "keras_pixelcnn/sampling/wavefront.py",
     "block = tf.where(self.valid, block, tf.zeros((), block.dtype))",
     "block = block", ["tests/test_sampling.py", "-k", "wavefront"]),
    ("wavefront_lag_one_less", "keras_pixelcnn/sampling/wavefront.py",
     "    return reach + 1", "    return reach", ["tests/test_sampling.py", "-k", "wavefront"]),
    ("wavefront_reach_of_the_row_lstm_0", "keras_pixelcnn/sampling/recurrent_rules.py",
     "return self.layer.kernel_size // 2  # h of row r - 1", "return 0  # h of row r - 1",
     ["tests/test_sampling.py", "-k", "wavefront"]),
    ("wavefront_lanes_of_another_column", "keras_pixelcnn/sampling/wavefront.py",
     "base = tf.stack([0, row, step, 0])", "base = tf.stack([0, row, step + 1, 0])",
     ["tests/test_sampling.py", "-k", "wavefront"]),
    ("executor_row_matmuls_read_the_first_kernel_row_only", "keras_pixelcnn/sampling/rules.py",
     "taps = tf.concat([slab[:, r, dx:dx + end:stride]", "taps = tf.concat([slab[:, 0, dx:dx + end:stride]",
     [BANDED, "-k", "gated_pixelcnn or pixelcnn_pp"]),
    ("executor_up_sampling_taps_not_transposed", "keras_pixelcnn/sampling/rules.py",
     "taps=tf.transpose(self.layer.kernel, (0, 1, 3, 2))", "taps=self.layer.kernel",
     [BANDED, "-k", "pixelcnn_pp"]),
    ("executor_one_image_products_for_every_batch", "keras_pixelcnn/sampling/attention_rule.py",
     "tf.cond(tf.shape(q)[0] == 1,", "tf.cond(tf.shape(q)[0] >= 1,", [BANDED, "-k", "pixelsnail"]),
    ("executor_diagonal_rows_together_to_the_wrong_layers", "keras_pixelcnn/sampling/recurrent_rules.py",
     "for part in tf.split(h, units, axis=-1)]", "for part in tf.split(h, units, axis=-1)[::-1]]",
     [BANDED, "-k", "diagonal"]),
    ("executor_diagonal_rows_together_with_the_first_side_kernel", "keras_pixelcnn/sampling/recurrent_rules.py",
     'tf.pad(tf.reshape(values.weights(rule)["side"]', 'tf.pad(tf.reshape(values.weights(rules[0])["side"]',
     [DIAGONAL_ENGINE]),
    ("diagonal_row_side_kernel_interleaved", "keras_pixelcnn/sampling/recurrent_rules.py",
     'weights["side"] = tf.gather(weights["side"], gate_major_order(self.output.depth), axis=-1)',
     'weights["side"] = weights["side"]', [DIAGONAL_ENGINE]),
    ("diagonal_row_from_the_left", "keras_pixelcnn/sampling/recurrent_rules.py",
     "for z in reversed(columns[:-1]):", "for z in columns[:-1]:", [DIAGONAL_ENGINE]),
    ("attention_block_logits_of_other_heads", "keras_pixelcnn/sampling/attention_rule.py",
     "(-1, 1, heads, size)) * tf.constant(np.eye(heads)[:, :, None], q.dtype)",
     "(-1, 1, heads, size)) * tf.constant(np.ones((heads, heads, 1)), q.dtype)",
     ["tests/test_pixelsnail.py", "-k", "every_pixel"]),
    ("attention_current_row_from_the_stale_whole_cache", "keras_pixelcnn/sampling/attention_rule.py",
     "tf.reshape(values.window(t, row, 1, 0, width), (-1, width, t.depth))",
     "tf.reshape(values.whole(t)[:, row:row + 1], (-1, width, t.depth))",
     ["tests/test_pixelsnail.py", "-k", "every_pixel"]),
]


def run(name, path, original, mutated, args):
    path = os.path.join(ROOT, path)
    with open(path) as handle:
        source = handle.read()
    if source.count(original) != 1:
        return "STALE (the original snippet is not in the file once: update the table)"
    try:
        with open(path, "w") as handle:
            handle.write(source.replace(original, mutated))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True)
    finally:
        with open(path, "w") as handle:
            handle.write(source)
    if result.returncode == 5:  # pytest ran no test: the -k expression is stale
        return "NO TESTS (the pytest arguments select nothing: update the table)"
    return "killed" if result.returncode != 0 else "SURVIVED"


def main(pattern=""):
    outcomes = {name: run(name, *rest) for name, *rest in MUTANTS if pattern in name}
    for name, outcome in outcomes.items():
        print(f"{outcome:9} {name}")
    return 0 if all(outcome == "killed" for outcome in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
