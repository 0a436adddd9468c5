/* Print the code table's rows (scope, state per role, hint) as
 * docs/diagnosis.md has them (used by the test unit.core.doc_table). */
#include <stdio.h>

#include "smtp_probe.h"

/* One Markdown row per code. */
int main(void) {
  for (int c = 0; c < SP_CODE_COUNT; c++)
    printf("| `%s` | %s | %s | %s | %s | %s |\n", sp_code_name((enum sp_code)c),
           sp_code_scope_name(sp_code_scope((enum sp_code)c)),
           sp_state_name(sp_code_state((enum sp_code)c, SP_ROLE_SUBMISSION)),
           sp_state_name(sp_code_state((enum sp_code)c, SP_ROLE_IMPLICIT)),
           sp_state_name(sp_code_state((enum sp_code)c, SP_ROLE_RELAY)),
           sp_code_hint((enum sp_code)c));
  return 0;
}
