"""Names of the metrics a run logs that code outside their writer reads (summaries, tests).

One home for each name: the writer and every reader import it from here, so a rename cannot silently leave a
reader behind (a reader of a name nobody writes fails on import, not on the first machine with that backend).
"""

LATENCY_MEDIAN = "latency_ms_median"
LATENCY_P99 = "latency_ms_p99"
PARITY_MAX_ABS = "parity_max_abs_err"
PARITY_REL_L2 = "parity_rel_l2_err"
TOP1_AGREEMENT = "top1_agreement"  # share of AGREEMENT_INPUTS inputs whose top class matches PyTorch FP32's
MACS = "macs"  # the complexity counter's multiply-accumulates of one image (batch 1)
PARAMS = "params_count"
BUILD_S = "build_s"
EXPORT_S = "export_s"
ENGINE_SIZE_MB = "engine_size_mb"  # MiB of the serialized engine
ENGINE_LAYERS = "engine_layers"  # layers of the built engine, after fusion (needs a deserialized engine)
NETWORK_LAYERS = "network_layers"  # layers of the parsed network, before fusion
BUILDER_S = "trt_builder_s"  # TensorRT's build_serialized_network alone, when this run built the engine
ARTIFACT_MB = "artifact_mb"  # MiB this run added to the artifact store (identical model files are stored once)
LATENCY_MEDIAN_CI_LOW = "latency_ms_median_ci95_low"  # 95 % confidence interval of the median (statistics.py)
LATENCY_MEDIAN_CI_HIGH = "latency_ms_median_ci95_high"
LATENCY_COV = "latency_cov"
PIPELINED_MEDIAN = "pipelined_ms_median"  # per inference, PIPELINE_DEPTH issued back to back (benchmark.py)
PIPELINED_MEDIAN_CI_LOW = "pipelined_ms_median_ci95_low"
PIPELINED_MEDIAN_CI_HIGH = "pipelined_ms_median_ci95_high"
ENQUEUE_MEDIAN = "enqueue_ms_median"  # host time to issue one GPU inference (each has a *_p99 twin)
H2D_MEDIAN = "h2d_ms_median"  # end_to_end on a GPU: the input's host->device copy, between CUDA events
COMPUTE_MEDIAN = "compute_ms_median"  # end_to_end on a GPU: the engine's work between the two copies
D2H_MEDIAN = "d2h_ms_median"  # end_to_end on a GPU: the output's device->host copy
ENERGY_PER_INFERENCE = "energy_mj_per_inference"  # the device's energy over the measurement window / inferences
ENERGY_MEAN_W = "energy_mean_w"  # that energy over the window's length
ENERGY_WINDOW_S = "energy_window_s"
ATTR_COVERAGE = "attr_coverage"  # attributed time / measured latency median (attribution.py)
STOP_REASON_TAG = "stop_reason"  # why the per-request loop stopped: precision reached | min_iters/min_s | max_s
# benchmark.trials: each trial a fresh worker process and engine build (job/trials.py)
TRIALS = "trials"  # trials measured; latency_ms_median is then the median of their medians
TRIAL_MEDIAN = "trial_latency_ms_median"  # one value per trial, logged with step = trial index
TRIAL_MEDIAN_CI_LOW = "trial_latency_ms_median_ci95_low"  # that trial's within-trial interval
TRIAL_MEDIAN_CI_HIGH = "trial_latency_ms_median_ci95_high"
TRIAL_BUILD_S = "trial_build_s"
# The interval of the median over trials that covers rebuilds (Student's t, statistics.py); trials >= 2
LATENCY_MEDIAN_TRIALS_CI_LOW = "latency_ms_median_trials_ci95_low"
LATENCY_MEDIAN_TRIALS_CI_HIGH = "latency_ms_median_trials_ci95_high"
PIPELINED_MEDIAN_TRIALS_CI_LOW = "pipelined_ms_median_trials_ci95_low"
PIPELINED_MEDIAN_TRIALS_CI_HIGH = "pipelined_ms_median_trials_ci95_high"
# The GPU observed from the parent through the timed window (measure/observer.py)
THROTTLED_S = "throttled_s"  # seconds of the window with the SM clock low or a throttle reason set
THROTTLE_DISCARDED = "throttle_discarded"  # benchmark.throttle=discard: samples dropped inside throttled spans
WINDOW_SM_CLOCK_MIN = "window_sm_clock_min_mhz"
WINDOW_POWER_MAX_W = "window_power_max_w"
WINDOW_TEMPERATURE_MAX = "window_temperature_max_c"
