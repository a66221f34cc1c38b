"""Names of the files a write creates."""

from __future__ import annotations


class FilenameProvider:
    """Chooses the name of each write task's file; subclass it and pass it as
    ``filename_provider`` to customise names.

    The default name is ``{dataset_uuid}_{write_uuid}_{task_index:06}.{file_format}``
    (the dataset part only when ``dataset_uuid`` is given), as in Ray 2.60. Names must
    be unique and deterministic for a given write UUID and task index.

    Unlike Ray, the deprecated ``get_filename_for_block``/``get_filename_for_row`` hooks
    do not exist.
    """

    def __init__(self, dataset_uuid: str | None = None, file_format: str | None = None) -> None:
        self.dataset_uuid = dataset_uuid
        self.file_format = file_format

    def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
        """The file name (no directory) for write task ``task_index`` of write ``write_uuid``."""
        name = f"{write_uuid}_{task_index:06}"
        if self.dataset_uuid is not None:
            name = f"{self.dataset_uuid}_{name}"
        if self.file_format is not None:
            name = f"{name}.{self.file_format}"
        return name
