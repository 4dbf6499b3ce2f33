import sys
from pathlib import Path

# The generated-audio helpers (q24_cases, talkoff_audio) live next to the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
