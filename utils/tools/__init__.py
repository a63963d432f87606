"""The course's tooling for maintainers and instructors; lessons never import it.

``cli`` is the ``course`` command, ``runner`` executes lessons over a matrix of parameters
(``course run``), ``lessons`` checks the lesson pages and writes the README's lesson table.
"""

from pathlib import Path

# The repository, when the course is installed from a checkout (editable).
CHECKOUT = Path(__file__).resolve().parents[2]

