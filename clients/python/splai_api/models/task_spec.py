from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.task_kind import TaskKind
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.expand import Expand
  from ..models.requirements import Requirements
  from ..models.task_spec_inputs import TaskSpecInputs





T = TypeVar("T", bound="TaskSpec")



@_attrs_define
class TaskSpec:
    """ 
        Attributes:
            id (str):
            kind (TaskKind):
            cache (bool | None | Unset): Result caching (default on): a task whose output is determined by its inputs
                (greedy
                inference, embeddings, aggregation, pure tools) reuses the tenant's earlier output for the
                same inputs, model weights and executor version; `false` always runs it.
            expand (Expand | None | Unset): The task's output is a [`SubDag`] that the scheduler validates and appends to
                the job
                when the task succeeds (a map over a list known only at run time, a model's plan).
            inputs (TaskSpecInputs | Unset): Named inputs: literals, or references to a parent's output.
            max_retries (int | None | Unset):
            parents (list[str] | Unset):
            requirements (Requirements | Unset): What a worker must offer to run a task. `model` and `tools` are hard
                constraints.
            timeout_s (int | None | Unset): The attempt's timeout in seconds (at most a day).
     """

    id: str
    kind: TaskKind
    cache: bool | None | Unset = UNSET
    expand: Expand | None | Unset = UNSET
    inputs: TaskSpecInputs | Unset = UNSET
    max_retries: int | None | Unset = UNSET
    parents: list[str] | Unset = UNSET
    requirements: Requirements | Unset = UNSET
    timeout_s: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.expand import Expand # noqa: PLC0415
        from ..models.requirements import Requirements # noqa: PLC0415
        from ..models.task_spec_inputs import TaskSpecInputs # noqa: PLC0415
        id = self.id

        kind = self.kind.value

        cache: bool | None | Unset
        if isinstance(self.cache, Unset):
            cache = UNSET
        else:
            cache = self.cache

        expand: dict[str, Any] | None | Unset
        if isinstance(self.expand, Unset):
            expand = UNSET
        elif isinstance(self.expand, Expand):
            expand = self.expand.to_dict()
        else:
            expand = self.expand

        inputs: dict[str, Any] | Unset = UNSET
        if not isinstance(self.inputs, Unset):
            inputs = self.inputs.to_dict()

        max_retries: int | None | Unset
        if isinstance(self.max_retries, Unset):
            max_retries = UNSET
        else:
            max_retries = self.max_retries

        parents: list[str] | Unset = UNSET
        if not isinstance(self.parents, Unset):
            parents = self.parents



        requirements: dict[str, Any] | Unset = UNSET
        if not isinstance(self.requirements, Unset):
            requirements = self.requirements.to_dict()

        timeout_s: int | None | Unset
        if isinstance(self.timeout_s, Unset):
            timeout_s = UNSET
        else:
            timeout_s = self.timeout_s


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "id": id,
            "kind": kind,
        })
        if cache is not UNSET:
            field_dict["cache"] = cache
        if expand is not UNSET:
            field_dict["expand"] = expand
        if inputs is not UNSET:
            field_dict["inputs"] = inputs
        if max_retries is not UNSET:
            field_dict["max_retries"] = max_retries
        if parents is not UNSET:
            field_dict["parents"] = parents
        if requirements is not UNSET:
            field_dict["requirements"] = requirements
        if timeout_s is not UNSET:
            field_dict["timeout_s"] = timeout_s

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.expand import Expand # noqa: PLC0415
        from ..models.requirements import Requirements # noqa: PLC0415
        from ..models.task_spec_inputs import TaskSpecInputs # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        kind = TaskKind(d.pop("kind"))




        def _parse_cache(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        cache = _parse_cache(d.pop("cache", UNSET))


        def _parse_expand(data: object) -> Expand | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                expand_type_0 = Expand.from_dict(data)



                return expand_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Expand | None | Unset, data)

        expand = _parse_expand(d.pop("expand", UNSET))


        _inputs = d.pop("inputs", UNSET)
        inputs: TaskSpecInputs | Unset
        if isinstance(_inputs,  Unset):
            inputs = UNSET
        else:
            inputs = TaskSpecInputs.from_dict(_inputs)




        def _parse_max_retries(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_retries = _parse_max_retries(d.pop("max_retries", UNSET))


        parents = cast(list[str], d.pop("parents", UNSET))


        _requirements = d.pop("requirements", UNSET)
        requirements: Requirements | Unset
        if isinstance(_requirements,  Unset):
            requirements = UNSET
        else:
            requirements = Requirements.from_dict(_requirements)




        def _parse_timeout_s(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        timeout_s = _parse_timeout_s(d.pop("timeout_s", UNSET))


        task_spec = cls(
            id=id,
            kind=kind,
            cache=cache,
            expand=expand,
            inputs=inputs,
            max_retries=max_retries,
            parents=parents,
            requirements=requirements,
            timeout_s=timeout_s,
        )

        return task_spec

