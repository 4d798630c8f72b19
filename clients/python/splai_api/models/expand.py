from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.sub_dag import SubDag





T = TypeVar("T", bound="Expand")



@_attrs_define
class Expand:
    """ How an expanding task's output joins its job.

        Attributes:
            fallback (None | SubDag | Unset): Appended instead when the output is not a valid sub-DAG (the reason is
                recorded on the
                job's `job_expanded`); without it such an output fails the task for good.
     """

    fallback: None | SubDag | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.sub_dag import SubDag # noqa: PLC0415
        fallback: dict[str, Any] | None | Unset
        if isinstance(self.fallback, Unset):
            fallback = UNSET
        elif isinstance(self.fallback, SubDag):
            fallback = self.fallback.to_dict()
        else:
            fallback = self.fallback


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if fallback is not UNSET:
            field_dict["fallback"] = fallback

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.sub_dag import SubDag # noqa: PLC0415
        d = dict(src_dict)
        def _parse_fallback(data: object) -> None | SubDag | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fallback_type_0 = SubDag.from_dict(data)



                return fallback_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubDag | Unset, data)

        fallback = _parse_fallback(d.pop("fallback", UNSET))


        expand = cls(
            fallback=fallback,
        )

        return expand

