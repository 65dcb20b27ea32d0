"""An output folder a verb owns: where it may be, who holds it, and what ``--force`` removes.

Every verb that writes (``train``, ``compare``, ``ablate``, ``transfer``, ``probe``,
``visualize``, ``occlude``; ``export`` writes into ``data/`` by its own ``--name`` rule)
follows one rule, :data:`RULE`, which each verb's ``--help`` prints:

* **Where.** ``--out`` is a folder of the command's own (:func:`check_place`): never the
  current folder or a folder that holds it, the repository's root, ``data/`` or anything
  inside it, the ``zfbook`` package, a folder that is, holds or lies inside one of the
  command's input folders, or the folder of an input file; ``''`` and ``.`` are the current
  folder. An existing file is refused ("… is a file; --out takes a folder").
* **Who.** While a command runs it holds the folder (:class:`FolderLock`): ``OUT/.zfbook.lock``
  is created atomically (``os.open(O_CREAT | O_EXCL)``), names the owner (pid, host, start
  time, verb, command) and carries an ``flock`` for the owner's lifetime. A second command
  into the folder is refused in one line; a lock whose owner no longer runs (its pid is
  gone, or a zombie, and nobody holds the flock) is taken over with a one-line note. The
  lock is removed on every exit: success, error, Ctrl-C. Under ``torchrun`` only rank 0
  takes it (:func:`on_main`, which also gives every rank rank 0's refusal).
* **What.** Files are written atomically (:func:`zfbook.checkpoint.save_atomic`,
  :func:`~zfbook.checkpoint.write_text_atomic`: a temporary ``.NAME.tmpPID`` beside the
  file, fsync, rename). Temporary files a killed command left behind (:func:`leftovers`: the
  pid in the name no longer runs) are removed by the next command into the folder, also
  with ``--resume``. A verb removes only files it wrote itself and recognises as its own by
  name *and* content (:class:`Owned`): ``--force`` removes those, lists them on stderr, and
  leaves every other file where it is; a file with one of the verb's names that the verb did
  not write is refused, never removed. Nothing here calls ``shutil.rmtree`` on a folder it
  did not create itself.

Which verbs need what: ``visualize`` and ``occlude`` want an empty (or new) folder, or with
``--force`` one whose only files of theirs are a previous output (other files stay beside
the new one); ``train`` the same for a run's files (``zfbook.train.check_run_folder``), or
``--resume``; ``compare``, ``ablate``, ``transfer`` and ``probe`` continue what their
``results.json`` holds and refuse a ``results.json`` they did not write.
"""
from __future__ import annotations

from .folder import Owned, OutputFolder, clear_leftovers, describe, head, held, leftovers
from .lock import LOCK, FolderLock, on_main
from .place import check_place, make_folder, remove_if_empty

__all__ = ["RULE", "LOCK", "check_place", "FolderLock", "on_main", "leftovers", "clear_leftovers",
           "Owned", "OutputFolder", "held", "make_folder", "remove_if_empty", "describe", "head", "verb_of"]

#: the ``--out``/``--force`` rule, printed at the end of every writing verb's ``--help``
RULE = (
    "--out and --force (the same for every verb that writes): --out is a folder of the "
    "command's own, never the current folder or one that holds it, the repository's root, "
    "data/ (only export writes there, by --name), or a folder that is, holds or lies inside "
    "one of the command's inputs; a file is refused. While a command runs it holds the folder "
    "(OUT/.zfbook.lock, naming its pid): a second command into it is refused, and a lock left "
    "by a command that no longer runs is taken over. Every file is written atomically "
    "(temporary file, fsync, rename); temporary files a killed command left are removed by the "
    "next one. A verb never removes a file it did not write: --force removes only the verb's "
    "own files (train: last.pt, history.json, snapshots/epoch*.pt; visualize: index.html, "
    "images.json, topk.pt, LAYER/maps_*.png; occlude: its four PNGs and maps.json; transfer, "
    "probe: start OUT/results.json over, and transfer --choose-recipes OUT/validation.json), "
    "lists them, and leaves every other file where it is; a file of one of those names that "
    "the verb did not write is refused. compare, ablate, transfer, probe and train --resume "
    "continue what the folder holds.")


def verb_of(command: str, default: str) -> str:
    """The verb of a ``python -m zfbook VERB ...`` command line (``default`` otherwise)."""
    words = command.split()
    return words[3] if words[:3] == ["python", "-m", "zfbook"] and len(words) > 3 else default
