"""What SynthTalk's speakers say.

Training sentences are drawn from templates over a word list, so there are millions of them. Validation
and test clips read from two fixed lists written for them; a training sentence that happens to equal one
of those is drawn again, so the splits never share a sentence.
"""

from __future__ import annotations

import numpy as np

_WORDS = {
    "name": ("Anna", "Peter", "Maria", "George", "Lucy", "Oliver", "Nina", "Samuel", "Chloe",
             "Victor", "Hannah", "Martin", "Julia", "Thomas", "Grace", "Daniel"),
    "adjective": ("quiet", "bright", "heavy", "small", "yellow", "ancient", "gentle", "busy",
                  "cold", "famous", "empty", "careful", "purple", "happy", "narrow", "warm",
                  "strange", "modern", "lucky", "broken"),
    "noun": ("garden", "window", "teacher", "river", "bicycle", "kitchen", "mountain", "letter",
             "market", "picture", "doctor", "village", "engine", "blanket", "museum", "orange",
             "pencil", "harbour", "machine", "festival", "library", "bridge", "camera", "forest"),
    "verb_past": ("found", "painted", "visited", "carried", "opened", "watched", "borrowed",
                  "cleaned", "followed", "described", "repaired", "remembered", "ordered",
                  "measured", "noticed", "collected"),
    "verb": ("open", "bring", "visit", "watch", "carry", "paint", "follow", "repair", "describe",
             "measure", "collect", "remember", "borrow", "clean"),
    "place": ("station", "beach", "office", "hospital", "theatre", "airport", "school", "park",
              "castle", "island", "bakery", "stadium"),
    "time": ("yesterday", "this morning", "last summer", "on Monday", "after lunch", "every evening",
             "at midnight", "next week", "in April", "before dawn"),
    "adverb": ("slowly", "quickly", "quietly", "happily", "carefully", "suddenly", "loudly",
               "gently", "proudly", "easily"),
}

_TEMPLATES = (
    "{name} {verb_past} the {adjective} {noun} {time}.",
    "The {adjective} {noun} near the {place} was {adjective} {time}.",
    "Did {name} {verb} the {noun} at the {place}?",
    "We {verb_past} a {adjective} {noun} and then walked {adverb} to the {place}.",
    "Please {verb} the {adjective} {noun} before {name} arrives.",
    "{time}, {name} {adverb} {verb_past} the {noun} of the {place}.",
    "I think the {noun} is too {adjective} for the {place}.",
    "Why would anyone {verb} a {adjective} {noun}?",
    "{name} and {name} {verb_past} the {noun} {adverb}.",
    "Nobody {verb_past} the {adjective} {noun} until {name} came back {time}.",
)

VALIDATION_SENTENCES = (
    "The paper boat drifted past the old lighthouse.",
    "Could you pass me the salt and the pepper?",
    "Seven children were singing under the apple tree.",
    "My brother fixed the roof before the storm.",
    "The violin sounded sweeter than the piano.",
    "Turn left at the fountain and keep walking.",
    "She wrapped the gift in shiny blue paper.",
    "A thick fog covered the valley all morning.",
    "The puppy chewed through my favourite shoe.",
    "We should leave early to avoid the traffic.",
    "His grandmother knits warm scarves every winter.",
    "The chef tasted the soup and added more thyme.",
    "Thunder rolled over the hills after sunset.",
    "Every Friday the club meets in the old hall.",
    "The astronaut waved from the window of the capsule.",
    "Fresh bread smells wonderful in the morning.",
    "Keep the receipt in case the lamp stops working.",
    "The owl watched us from the top of the barn.",
    "Our neighbour grows tomatoes on the balcony.",
    "The final chapter surprised every reader.",
    "Bring a jacket because the evenings are chilly.",
    "The pilot announced a short delay.",
    "Wild horses galloped across the open plain.",
    "I lost my keys somewhere in the living room.",
)

TEST_SENTENCES = (
    "The lemon cake disappeared within an hour.",
    "Would you mind closing the garage door?",
    "A curious fox slipped under the wooden fence.",
    "They rowed the canoe across the misty lake.",
    "The museum opens its doors at nine sharp.",
    "Rain tapped softly against the kitchen glass.",
    "Please remember to water the roses on Sunday.",
    "The mechanic found a crack in the engine block.",
    "Our team celebrated with pizza and lemonade.",
    "The map showed a hidden path behind the waterfall.",
    "Grandfather told the same joke at every dinner.",
    "The orchestra tuned their instruments in silence.",
    "Mud covered the boots of every hiker.",
    "She whispered the answer to her best friend.",
    "The baker shaped the dough into little stars.",
    "How many marbles are hiding in that jar?",
    "The comet glowed faintly above the horizon.",
    "He spilled coffee all over the morning news.",
    "The zebra paused beside the muddy pond.",
    "Nobody noticed the clock had stopped at noon.",
    "Bright lanterns floated down the dark canal.",
    "The parrot repeated every word it heard.",
    "We packed sandwiches for the long train ride.",
    "The tailor measured the sleeves twice.",
)

SPLIT_SENTENCES = {"validation": VALIDATION_SENTENCES, "test": TEST_SENTENCES}
_HELD_OUT = frozenset(VALIDATION_SENTENCES + TEST_SENTENCES)


def training_sentence(rng: np.random.Generator) -> str:
  """A sentence from the templates, never one of the held-out lists."""
  while True:
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    sentence = _fill(template, rng)
    if sentence not in _HELD_OUT:
      return sentence


def sentence_for(split: str, rng: np.random.Generator) -> str:
  if split == "train":
    return training_sentence(rng)
  sentences = SPLIT_SENTENCES[split]
  return sentences[rng.integers(len(sentences))]


def _fill(template: str, rng: np.random.Generator) -> str:
  out, rest = [], template
  while "{" in rest:
    before, _, tail = rest.partition("{")
    key, _, rest = tail.partition("}")
    words = _WORDS[key]
    out += [before, words[rng.integers(len(words))]]
  out.append(rest)
  sentence = "".join(out)
  return sentence[0].upper() + sentence[1:]
