import { Type } from 'typebox';
import { INVITATION_STATUSES } from './invitations.domain.js';
import { toSummary } from '../users/users.schemas.js';
import type { InvitationRow } from './invitations.repository.js';

export const InviteBody = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254, description: 'Where the new technician will sign in' }),
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', description: 'Their display name' }),
  },
  { additionalProperties: false },
);

export const InvitationSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String(),
    name: Type.String(),
    status: Type.Union(INVITATION_STATUSES.map((s) => Type.Literal(s))),
    ticket_url: Type.String({ description: 'Single-use link where the invitee sets their password; pass it on to them' }),
    expires_at: Type.String({ format: 'date-time', description: 'When the link stops working (7 days after issue)' }),
    invited_by: Type.Union([Type.Ref('UserSummary'), Type.Null()], { description: 'Null for technicians created from the command line' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Invitation', title: 'Invitation' },
);

export function toInvitation(row: InvitationRow, inviter: { id: string; name: string } | null) {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    status: row.status,
    ticket_url: row.ticketUrl,
    expires_at: row.expiresAt.toISOString(),
    invited_by: inviter ? toSummary(inviter) : null,
    created_at: row.createdAt.toISOString(),
  };
}

export type Invitation = ReturnType<typeof toInvitation>;
