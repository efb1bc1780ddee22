"""Audio of each sequence (DAG step 8, "audio"): any common format read, mono, 16 kHz, +20 dB
without clipping, noisereduce (FaceTalk supplement, section D)."""
