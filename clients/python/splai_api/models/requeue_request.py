from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="RequeueRequest")



@_attrs_define
class RequeueRequest:
    """ 
        Attributes:
            job_id (str):
            task_id (None | str | Unset): One task; all dead-lettered tasks of the job when absent.
     """

    job_id: str
    task_id: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        task_id: None | str | Unset
        if isinstance(self.task_id, Unset):
            task_id = UNSET
        else:
            task_id = self.task_id


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "job_id": job_id,
        })
        if task_id is not UNSET:
            field_dict["task_id"] = task_id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        job_id = d.pop("job_id")

        def _parse_task_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        task_id = _parse_task_id(d.pop("task_id", UNSET))


        requeue_request = cls(
            job_id=job_id,
            task_id=task_id,
        )

        return requeue_request

