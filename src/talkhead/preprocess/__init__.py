"""What a raw capture lacks, made from what it has: frames decoded from video at the target
frame rate, colour calibration applied, undistorted images (:mod:`.ingest` writes them as a
talkhead-layout sequence), and the products later stages need (mattes, 2D landmarks, facial
segmentation, audio)."""
