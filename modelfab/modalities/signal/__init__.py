"""Signal modality (machine sound, vibration): reading, windowing, features, synthetic data.

Importing this package is cheap: numpy only; soundfile, scipy, h5py,
pandas, pyarrow and librosa are imported inside the functions that need them.
"""

from .features import FEATURE_SETS, extract_features, feature_names, recording_features
from .io import (
    AUDIO_EXTENSIONS,
    SIGNAL_EXTENSIONS,
    Recording,
    label_from,
    labels_for_files,
    list_recordings,
    read_labels_csv,
    read_recording,
)
from .synth import FAULTS, make_machine_dataset, make_machine_sound
from .windows import default_window, frame_windows, n_windows, window_starts

__all__ = [
    "AUDIO_EXTENSIONS", "FAULTS", "FEATURE_SETS", "SIGNAL_EXTENSIONS", "Recording", "default_window",
    "extract_features", "feature_names", "frame_windows", "label_from", "labels_for_files", "list_recordings",
    "make_machine_dataset", "make_machine_sound", "n_windows", "read_labels_csv", "read_recording",
    "recording_features", "window_starts",
]
