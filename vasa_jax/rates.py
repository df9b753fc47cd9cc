"""The time bases every part of the project shares: video at 25 frames per second, audio as 16 kHz
mono, so one video frame spans 640 audio samples (40 ms). Import them from here."""

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
