from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.task_spec import TaskSpec





T = TypeVar("T", bound="SubDag")



@_attrs_define
class SubDag:
    """ Tasks appended to a running job by the task that output them. Their ids are local: the job
    sees `{expanding task}.{id}`. A task here may name as parent another task here or a task of
    the job the expanding task depends on; tasks without a parent here run after the expanding
    task. The expanding task's children wait for the whole sub-DAG, and read `output`'s result
    where they read the expanding task's.

        Attributes:
            tasks (list[TaskSpec]):
            output (None | str | Unset): The task (local id) whose output stands for the expanding task's.
     """

    tasks: list[TaskSpec]
    output: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.task_spec import TaskSpec # noqa: PLC0415
        tasks = []
        for tasks_item_data in self.tasks:
            tasks_item = tasks_item_data.to_dict()
            tasks.append(tasks_item)



        output: None | str | Unset
        if isinstance(self.output, Unset):
            output = UNSET
        else:
            output = self.output


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "tasks": tasks,
        })
        if output is not UNSET:
            field_dict["output"] = output

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_spec import TaskSpec # noqa: PLC0415
        d = dict(src_dict)
        tasks = []
        _tasks = d.pop("tasks")
        for tasks_item_data in (_tasks):
            tasks_item = TaskSpec.from_dict(tasks_item_data)



            tasks.append(tasks_item)


        def _parse_output(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        output = _parse_output(d.pop("output", UNSET))


        sub_dag = cls(
            tasks=tasks,
            output=output,
        )

        return sub_dag

