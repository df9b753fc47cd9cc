"""The canonical face crop every model and dataset shares: where the eyes and the mouth sit.

The point between the eyes lies at 41% and the mouth centre at 63.2% of the crop's height, centred
left to right, so the crop is 1 / 0.222 = 4.5 eye-to-mouth distances. An adult's brow to chin
(about 2 eye-to-mouth distances) then fills 45% of it, as in VoxCeleb2's loose crops and SynthTalk's
framing, with the top of the hair a little below the crop's top and the neck below the chin.
"""

CROP_EYES_FRACTION = 0.41
CROP_MOUTH_FRACTION = 0.632
